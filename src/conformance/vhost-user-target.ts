import { VIRTIO_ID_GPIO } from '../protocol/constants.ts';
import { VhostUserFrontend } from '../transports/vhost-user/frontend.ts';
import type { VirtioDriverTransport } from '../virtio/driver-transport.ts';
import { HarnessError } from './harness-error.ts';

export interface TargetOptions {
  /** Reply timeout of every vhost-user request. */
  replyMs: number;
  /** How long to wait for the back-end to listen (again) before each connection (default 5000). */
  waitMs?: number;
}

/** connect(2) errors that mean "nobody is listening yet", as opposed to "you may not". */
const NOT_LISTENING = ['ENOENT', 'ECONNREFUSED', 'EAGAIN'];

function notListening(e: unknown): boolean {
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string' && NOT_LISTENING.includes(code)) return true;
    if (new RegExp(`\\bconnect: (${NOT_LISTENING.join('|')})\\b`).test(c.message)) return true;
  }
  return false;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Opens connections to a vhost-user-gpio back-end, one per call. Some back-ends (rust-vmm's
 * vhost-device-gpio) remove their socket while a front-end is connected and bind it again a few
 * milliseconds after it leaves, so each connect retries while nothing listens, up to `waitMs`.
 * Anything that keeps the connection from being set up is a HarnessError, not a device result.
 */
export function vhostUserTarget(socket: string, o: TargetOptions): () => Promise<VirtioDriverTransport> {
  const waitMs = o.waitMs ?? 5000;
  return async () => {
    const deadline = Date.now() + waitMs;
    for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
      try {
        return await VhostUserFrontend.connect(socket, VIRTIO_ID_GPIO, { timeoutMs: o.replyMs });
      } catch (e) {
        const why = (e as Error).message;
        if (!notListening(e))
          throw new HarnessError(`cannot set up a vhost-user connection to ${socket}: ${why}`);
        if (Date.now() >= deadline)
          throw new HarnessError(`back-end not listening at ${socket} within ${waitMs} ms: ${why}`);
        await sleep(Math.min(pause, Math.max(1, deadline - Date.now())));
      }
    }
  };
}
