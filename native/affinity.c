/* CPU placement; pid 0 is the calling thread, i.e. the JS main thread. */
#include "shim.h"

#include <errno.h>
#include <sched.h>

napi_value js_get_cpu(napi_env env, napi_callback_info info) {
  int cpu = sched_getcpu();
  (void)info;
  if (cpu < 0) return throw_errno(env, "sched_getcpu", errno);
  return make_number(env, cpu);
}

/* setAffinity(cpus: number[]): void */
napi_value js_set_affinity(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_array = false;
  uint32_t n, i;
  cpu_set_t set;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  NAPI_CALL(env, napi_is_array(env, argv[0], &is_array));
  if (!is_array) return throw_type(env, "cpus", "an array of numbers");
  NAPI_CALL(env, napi_get_array_length(env, argv[0], &n));
  CPU_ZERO(&set);
  for (i = 0; i < n; i++) {
    napi_value el;
    uint64_t cpu;
    NAPI_CALL(env, napi_get_element(env, argv[0], i, &el));
    if (!arg_uint(env, el, "cpus[i]", CPU_SETSIZE - 1, &cpu)) return NULL;
    CPU_SET((int)cpu, &set);
  }
  if (sched_setaffinity(0, sizeof set, &set) < 0) return throw_errno(env, "sched_setaffinity", errno);
  return NULL;
}

/* getAffinity(): number[] (ascending) */
napi_value js_get_affinity(napi_env env, napi_callback_info info) {
  cpu_set_t set;
  napi_value arr, el;
  uint32_t idx = 0;
  int cpu;
  (void)info;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) < 0) return throw_errno(env, "sched_getaffinity", errno);
  NAPI_CALL(env, napi_create_array(env, &arr));
  for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &set)) continue;
    NAPI_CALL(env, napi_create_int32(env, cpu, &el));
    NAPI_CALL(env, napi_set_element(env, arr, idx++, el));
  }
  return arr;
}
