/* The addon's export table. */
#include "shim.h"

#include <dlfcn.h>

/* Signal handlers live in this shared object: once one is installed, the
 * object must stay mapped even if every environment that loaded it is gone
 * (Node may dlclose an addon when a worker thread exits). */
void keep_addon_loaded(void) {
  Dl_info self;
  if (dladdr((void *)keep_addon_loaded, &self) != 0 && self.dli_fname != NULL)
    dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}

NAPI_MODULE_INIT() {
  napi_property_descriptor fns[] = {
      FN("socketListen", js_socket_listen),
      FN("socketAccept", js_socket_accept),
      FN("socketConnect", js_socket_connect),
      FN("socketPair", js_socket_pair),
      FN("peerCredentials", js_peer_credentials),
      FN("sendMsg", js_send_msg),
      FN("recvMsg", js_recv_msg),
      FN("closeFd", js_close_fd),
      FN("closeNoWait", js_close_no_wait),
      FN("setNonBlocking", js_set_non_blocking),
      FN("eventfd", js_eventfd),
      FN("eventfdRead", js_eventfd_read),
      FN("eventfdWrite", js_eventfd_write),
      FN("memfdCreate", js_memfd_create),
      FN("fdSize", js_fd_size),
      FN("fdSeals", js_fd_seals),
      FN("mmap", js_mmap),
      FN("munmap", js_munmap),
      FN("mappingFaulted", js_mapping_faulted),
      FN("faultCounter", js_fault_counter),
      FN("getCpu", js_get_cpu),
      FN("setAffinity", js_set_affinity),
      FN("getAffinity", js_get_affinity),
      FN("ioctl", js_ioctl),
      FN("readFd", js_read_fd),
      FN("timerfdCreate", js_timerfd_create),
      FN("timerfdArm", js_timerfd_arm),
      FN("timerfdDisarm", js_timerfd_disarm),
      FN("timerfdRead", js_timerfd_read),
      FN("monotonicNs", js_monotonic_ns),
  };
  if (!poller_init(env, exports)) return NULL;
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns));
  return exports;
}
