import { constants, openSync } from 'node:fs';
import { FdPoller, closeFd, ioctl, readFd } from '../native/index.ts';
import type { ChipIo, FdWatch } from './chip-io.ts';

/** ChipIo over the native shim: ioctl and non-blocking read on the JS thread, libuv polling. */
export const nativeChipIo: ChipIo = {
  // libuv opens with O_CLOEXEC; the chip fd itself is never polled, so blocking mode is fine.
  open: (path) => openSync(path, constants.O_RDWR),
  ioctl: (fd, request, arg) => ioctl(fd, request, arg),
  read: (fd, buf) => readFd(fd, buf),
  close: (fd) => closeFd(fd),
  watch(fd, onReadable): FdWatch {
    // The poller puts the request fd into non-blocking mode, so readFd answers null when drained.
    const poller = new FdPoller(fd, (err) => onReadable(err));
    poller.start(true, false);
    return { close: () => poller.close() };
  },
};
