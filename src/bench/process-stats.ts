import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';

/** The CPU a process last ran on (/proc/PID/stat field 39), or null. */
export function lastCpuOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[36]);
  } catch {
    return null;
  }
}

/** CPU time of every thread of a process, in ns (/proc/PID/task/TID/schedstat, first field), or null. */
export function cpuNsOf(pid: number): bigint | null {
  try {
    let ns = 0n;
    for (const tid of readdirSync(`/proc/${pid}/task`))
      ns += BigInt(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    return ns;
  } catch {
    return null;
  }
}

/** Times a process's threads were switched in (schedstat's third field, summed): its wake-ups. */
export function wakeupsOf(pid: number): number | null {
  try {
    let n = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`))
      n += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ')[2]);
    return n;
  } catch {
    return null;
  }
}

/** Resident set size of a process in bytes (/proc/PID/status VmRSS), or null. */
export function rssOf(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export interface ProcessPin {
  pid: number;
  cpu: number;
  /** Gives the process back the CPUs it was allowed before. */
  restore(): void;
}

/** Pins every thread of a process to one CPU (taskset -a), remembering its previous CPU list. */
export function pinProcess(pid: number, cpu: number): ProcessPin {
  const m = /^Cpus_allowed_list:\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  const before = m?.[1] ?? null;
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
  return {
    pid,
    cpu,
    restore: () => {
      if (before === null) return;
      try {
        execFileSync('taskset', ['-a', '-p', '-c', before, String(pid)], { stdio: 'ignore' });
      } catch {
        // the back-end is gone: nothing to restore
      }
    },
  };
}

/**
 * The pid of the process listening at a unix socket path, whatever the back-end: its inode from
 * /proc/net/unix, then the process holding that inode among its fds. Null when not found
 * (another user's process, or no listener).
 */
export function socketOwnerPid(path: string): number | null {
  let inode: string | null = null;
  try {
    statSync(path);
    for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // Num RefCount Protocol Flags Type St Inode Path; flags 00010000 = __SO_ACCEPTCON (listening)
      if (f[7] === path && (parseInt(f[3], 16) & 0x10000) !== 0) inode = f[6];
    }
  } catch {
    return null;
  }
  if (inode === null) return null;
  const want = `socket:[${inode}]`;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      for (const fd of readdirSync(`/proc/${p}/fd`))
        if (readlinkSync(`/proc/${p}/fd/${fd}`) === want) return Number(p);
    } catch {
      // gone, or not ours to look at
    }
  }
  return null;
}
