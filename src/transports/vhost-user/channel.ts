import { FdPoller, closeFd, closeQuietly, isSyscallError, recvMsg, sendMsg } from '../../native/index.ts';
import { HEADER_SIZE, MAX_FDS, MAX_PAYLOAD, decodeHeader, encodeMessage, type Header } from './message.ts';

export interface Message extends Header {
  payload: Uint8Array;
  /** File descriptors that came with the message; the receiver owns (and must close) them. */
  fds: number[];
}

export interface ChannelHandlers {
  message(m: Message): void;
  /** The peer closed the socket, or the stream cannot be framed any more. Called once. */
  closed(reason: string): void;
}

/**
 * vhost-user message framing over a non-blocking Unix stream socket: a 12-byte header, then
 * `size` payload bytes; fds ride in SCM_RIGHTS with the header. Knows nothing of what a
 * message means.
 */
export class VhostUserChannel {
  private readonly poller: FdPoller;
  private header: Header | null = null;
  private buf: Uint8Array = new Uint8Array(0);
  private fds: number[] = [];
  private outbox: Array<{ data: Uint8Array; fds: number[] }> = [];
  private isClosed = false;

  constructor(
    readonly fd: number,
    private readonly handlers: ChannelHandlers,
  ) {
    this.poller = new FdPoller(fd, (err, readable, writable) => {
      if (err) {
        // libuv reports POLLERR as EBADF: on a Unix socket that is a peer that went away with
        // our data unread. Reading says which: ECONNRESET or EOF is a normal disconnect.
        this.drain();
        return this.close(`socket error: ${err.message}`);
      }
      if (writable) this.flush();
      if (readable) this.drain();
    });
    this.poller.start(true, false);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(request: number, flags: number, payload?: Uint8Array, fds: number[] = []): void {
    if (this.isClosed) return;
    this.outbox.push({ data: encodeMessage(request, flags, payload), fds });
    this.flush();
  }

  /** Stops reading, closes the socket and any fds received but not handed out. */
  close(reason = 'closed locally'): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.poller.close();
    for (const fd of this.fds) closeQuietly(fd); // a peer's: closed without waiting on anyone
    this.fds = [];
    try {
      closeFd(this.fd);
    } catch {
      // already gone
    }
    this.handlers.closed(reason);
  }

  /** Keep the event loop alive for this socket (a daemon) or not (a test client). */
  ref(on: boolean): void {
    if (on) this.poller.ref();
    else this.poller.unref();
  }

  private flush(): void {
    try {
      while (this.outbox.length > 0) {
        const m = this.outbox[0];
        const n = sendMsg(this.fd, m.data, m.fds);
        if (n === null) break;
        if (n < m.data.length) {
          this.outbox[0] = { data: m.data.subarray(n), fds: [] };
          continue;
        }
        this.outbox.shift();
      }
    } catch (e) {
      if (isSyscallError(e, 'EPIPE') || isSyscallError(e, 'ECONNRESET'))
        return this.close('peer reset the connection');
      return this.close(`send failed: ${(e as Error).message}`);
    }
    this.poller.start(true, this.outbox.length > 0);
  }

  private drain(): void {
    while (!this.isClosed) {
      const want = this.header ? this.header.size - this.buf.length : HEADER_SIZE - this.buf.length;
      let r;
      try {
        r = recvMsg(this.fd, Math.max(want, 1), MAX_FDS);
      } catch (e) {
        if (isSyscallError(e, 'ECONNRESET')) return this.close('peer reset the connection');
        return this.close(`receive failed: ${(e as Error).message}`);
      }
      if (r === null) return;
      this.fds.push(...r.fds);
      if (r.truncated) return this.close('control data truncated (too many fds)');
      if (r.data.length === 0) return this.close('peer closed the connection');
      this.buf = concat(this.buf, r.data);
      if (this.fds.length > MAX_FDS) return this.close(`more than ${MAX_FDS} fds with one message`);
      if (!this.header) {
        if (this.buf.length < HEADER_SIZE) continue;
        this.header = decodeHeader(this.buf);
        this.buf = new Uint8Array(0);
        if (this.header.size > MAX_PAYLOAD)
          return this.close(
            `message ${this.header.request} announces ${this.header.size} payload bytes (max ${MAX_PAYLOAD})`,
          );
      }
      if (this.buf.length < this.header.size) continue;
      const m: Message = { ...this.header, payload: this.buf, fds: this.fds };
      this.header = null;
      this.buf = new Uint8Array(0);
      this.fds = [];
      this.handlers.message(m);
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
