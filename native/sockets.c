/* AF_UNIX stream sockets: listen, accept, connect, pair, sendmsg/recvmsg with
 * SCM_RIGHTS, SO_PEERCRED. */
#include "shim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SEND_FDS 32  /* limit for sendMsg (and default for recvMsg) */
#define MAX_RECV_FDS 253 /* SCM_MAX_FD: the kernel never passes more */

/* socketListen(path: string, backlog: number): number */
napi_value js_socket_listen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct sockaddr_un sa;
  socklen_t salen = 0;
  int32_t backlog;
  int r, fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  r = arg_sockaddr(env, argv[0], &sa, &salen);
  if (r < 0) return NULL;
  if (!arg_int32(env, argv[1], "backlog", &backlog)) return NULL;
  if (r > 0) return throw_errno(env, "bind", r);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&sa, salen) < 0) return close_and_throw(env, fd, "bind", errno);
  if (listen(fd, backlog) < 0) return close_and_throw(env, fd, "listen", errno);
  return return_fd(env, fd);
}

/* socketAccept(fd: number): number | null */
napi_value js_socket_accept(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  int conn;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  do conn = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (conn < 0 && errno == EINTR);
  if (conn < 0) return is_eagain(errno) ? get_null(env) : throw_errno(env, "accept4", errno);
  return return_fd(env, conn);
}

/* socketConnect(path: string): number. Never waits: an AF_UNIX connect
 * completes at once, except that a blocking one sleeps while the listener's
 * backlog is full (a listener that never accepts would hold us forever);
 * non-blocking, that is EAGAIN. */
napi_value js_socket_connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un sa;
  socklen_t salen = 0;
  int r, fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  r = arg_sockaddr(env, argv[0], &sa, &salen);
  if (r < 0) return NULL;
  if (r > 0) return throw_errno(env, "connect", r);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (connect(fd, (struct sockaddr *)&sa, salen) < 0) return close_and_throw(env, fd, "connect", errno);
  return return_fd(env, fd);
}

/* socketPair(): [number, number] */
napi_value js_socket_pair(napi_env env, napi_callback_info info) {
  int sv[2];
  napi_value arr, a, b;
  (void)info;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
    return throw_errno(env, "socketpair", errno);
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok ||
      napi_create_int32(env, sv[0], &a) != napi_ok || napi_create_int32(env, sv[1], &b) != napi_ok ||
      napi_set_element(env, arr, 0, a) != napi_ok || napi_set_element(env, arr, 1, b) != napi_ok) {
    close(sv[0]);
    close(sv[1]);
    return throw_napi_failure(env, "socketPair result");
  }
  return arr;
}

/* peerCredentials(fd: number): { pid, uid, gid } (SO_PEERCRED: the peer's
 * credentials as of connect/socketpair time) */
napi_value js_peer_credentials(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, pid_v, uid_v, gid_v;
  int32_t fd;
  struct ucred cred;
  socklen_t len = sizeof cred;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return throw_errno(env, "getsockopt", errno);
  NAPI_CALL(env, napi_create_int32(env, cred.pid, &pid_v));
  NAPI_CALL(env, napi_create_uint32(env, cred.uid, &uid_v));
  NAPI_CALL(env, napi_create_uint32(env, cred.gid, &gid_v));
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_set_named_property(env, result, "pid", pid_v));
  NAPI_CALL(env, napi_set_named_property(env, result, "uid", uid_v));
  NAPI_CALL(env, napi_set_named_property(env, result, "gid", gid_v));
  return result;
}

/* sendMsg(fd: number, data: Uint8Array, fds?: number[]): number | null */
napi_value js_send_msg(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  void *data = NULL;
  size_t len = 0;
  int fds[MAX_SEND_FDS];
  uint32_t nfds = 0, i;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * MAX_SEND_FDS)];
  } control;
  struct iovec iov;
  struct msghdr msg;
  ssize_t n;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (!arg_bytes(env, argv[1], "data", &data, &len)) return NULL;
  if (!is_undefined(env, argv[2])) {
    bool is_array = false;
    NAPI_CALL(env, napi_is_array(env, argv[2], &is_array));
    if (!is_array) return throw_type(env, "fds", "an array of numbers");
    NAPI_CALL(env, napi_get_array_length(env, argv[2], &nfds));
    if (nfds > MAX_SEND_FDS) return throw_range(env, "fds.length", "<= 32");
    for (i = 0; i < nfds; i++) {
      napi_value el;
      int32_t v;
      NAPI_CALL(env, napi_get_element(env, argv[2], i, &el));
      if (!arg_int32(env, el, "fds[i]", &v)) return NULL;
      fds[i] = v;
    }
  }
  /* On a stream socket, ancillary data rides on the data bytes; with zero
   * bytes the kernel would silently drop the descriptors. */
  if (nfds > 0 && len == 0) return throw_range(env, "data.byteLength", ">= 1 when sending fds");

  memset(&msg, 0, sizeof msg);
  iov.iov_base = data;
  iov.iov_len = len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    struct cmsghdr *cmsg;
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return is_eagain(errno) ? get_null(env) : throw_errno(env, "sendmsg", errno);
  return make_number(env, (double)n);
}

/* Received descriptors we give up: a peer's, so closed without waiting. */
static void close_fds(const int *fds, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) close_no_wait(fds[i]);
}

/* recvMsg(fd: number, maxBytes: number, maxFds = 32):
 *   { data: Buffer; fds: number[]; truncated: boolean } | null */
napi_value js_recv_msg(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  uint64_t max_bytes, max_fds = MAX_SEND_FDS;
  void *buf;
  int fds[MAX_RECV_FDS];
  size_t nfds = 0, i;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * MAX_RECV_FDS)];
  } control;
  struct iovec iov;
  struct msghdr msg;
  struct cmsghdr *cmsg;
  ssize_t n;
  bool truncated;
  napi_value result, data_v, fds_v, trunc_v, el;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (!arg_uint(env, argv[1], "maxBytes", INT32_MAX, &max_bytes)) return NULL;
  if (max_bytes == 0) return throw_range(env, "maxBytes", ">= 1");
  if (!is_undefined(env, argv[2]) && !arg_uint(env, argv[2], "maxFds", MAX_RECV_FDS, &max_fds))
    return NULL;

  buf = malloc(max_bytes);
  if (buf == NULL) return throw_errno(env, "recvmsg", ENOMEM);
  memset(&msg, 0, sizeof msg);
  iov.iov_base = buf;
  iov.iov_len = max_bytes;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (max_fds > 0) {
    msg.msg_control = control.buf;
    /* CMSG_LEN, not CMSG_SPACE: the kernel installs
     * (controllen - sizeof(cmsghdr)) / sizeof(int) descriptors, so padding
     * would let it deliver more than max_fds. */
    msg.msg_controllen = CMSG_LEN(sizeof(int) * max_fds);
  }
  do n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    free(buf);
    return is_eagain(err) ? get_null(env) : throw_errno(env, "recvmsg", err);
  }

  if (msg.msg_controllen > 0) {
    for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
      size_t count;
      if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
      count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (i = 0; i < count; i++) {
        int rfd;
        memcpy(&rfd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
        if (nfds < MAX_RECV_FDS)
          fds[nfds++] = rfd;
        else
          close_no_wait(rfd); /* cannot happen: the control buffer bounds the count */
      }
    }
  }
  truncated = (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0;

  if (napi_create_buffer_copy(env, (size_t)n, buf, NULL, &data_v) != napi_ok) {
    free(buf);
    close_fds(fds, nfds);
    return throw_napi_failure(env, "napi_create_buffer_copy");
  }
  free(buf);
  if (napi_create_array_with_length(env, nfds, &fds_v) != napi_ok) goto fail;
  for (i = 0; i < nfds; i++) {
    if (napi_create_int32(env, fds[i], &el) != napi_ok || napi_set_element(env, fds_v, (uint32_t)i, el) != napi_ok)
      goto fail;
  }
  if (napi_get_boolean(env, truncated, &trunc_v) != napi_ok || napi_create_object(env, &result) != napi_ok ||
      napi_set_named_property(env, result, "data", data_v) != napi_ok ||
      napi_set_named_property(env, result, "fds", fds_v) != napi_ok ||
      napi_set_named_property(env, result, "truncated", trunc_v) != napi_ok)
    goto fail;
  return result;

fail:
  close_fds(fds, nfds);
  return throw_napi_failure(env, "recvMsg result");
}
