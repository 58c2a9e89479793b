import { statfsSync } from 'node:fs';

/**
 * Filesystems whose page faults the kernel answers from memory or a local block device. Guest
 * memory is read and written synchronously on the serving thread, so a region on a filesystem
 * whose faults another process or host answers (FUSE, NFS, SMB, 9p, ...) would let that party stall
 * the thread in a page fault, beyond any guard: such a region is refused.
 */
const KERNEL_SERVED = new Map<number, string>([
  [0x01021994, 'tmpfs'], // memfd, /dev/shm, QEMU's memory-backend-memfd
  [0x958458f6, 'hugetlbfs'],
  [0x858458f6, 'ramfs'],
  [0x0000ef53, 'ext2/3/4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0xf2f52010, 'f2fs'],
  [0x794c7630, 'overlayfs'],
]);

/** Names for the refusal message (the ones a memory fd is likely to be on). */
const OTHER = new Map<number, string>([
  [0x65735546, 'FUSE'],
  [0x00006969, 'NFS'],
  [0xfe534d42, 'SMB2'],
  [0xff534d42, 'CIFS'],
  [0x01021997, '9p'],
  [0x62656572, 'sysfs'],
  [0x00009fa0, 'procfs'],
  [0x09041934, 'anon inode fs'],
]);

/**
 * Null when `fd` may back guest memory, else why not (for the refusal). Looks at the filesystem the
 * descriptor's file is on, through its /proc/self/fd link.
 */
export function memoryFdRefusal(fd: number): string | null {
  const type = Number(statfsSync(`/proc/self/fd/${fd}`).type) >>> 0;
  if (KERNEL_SERVED.has(type)) return null;
  const name = OTHER.get(type) ?? 'a filesystem';
  return (
    `its fd is on ${name} (type 0x${type.toString(16)}), whose page faults the kernel does not answer by ` +
    `itself; guest memory must be on ${[...new Set(KERNEL_SERVED.values())].join(', ')}`
  );
}
