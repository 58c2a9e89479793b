/**
 * Owns the one macrotask the code under test defers work to: the driver batches its kicks
 * with setImmediate. While installed, setImmediate callbacks are queued here and run by
 * settle(), which also lets every microtask (promise continuations, the loopback's
 * queueMicrotask deliveries) finish. No timers and no real time are involved: the driver is
 * built without a request timeout, and nothing else schedules.
 */
const realSetImmediate = globalThis.setImmediate;
const queued: Array<() => void> = [];
let installed = 0;

// The driver never clears its immediates; one spent real handle stands in for every captured one.
const spent = realSetImmediate(() => {});

function capture<A extends unknown[]>(fn: (...args: A) => void, ...args: A): NodeJS.Immediate {
  queued.push(() => fn(...args));
  return spent;
}

export function installDeferredSteps(): () => void {
  if (installed++ === 0) globalThis.setImmediate = capture as typeof globalThis.setImmediate;
  return () => {
    if (--installed > 0) return;
    globalThis.setImmediate = realSetImmediate;
    for (const f of queued.splice(0)) realSetImmediate(f);
  };
}

const turn = (): Promise<void> => new Promise((r) => realSetImmediate(r));

/** Runs microtasks and captured immediates until nothing is left to run. */
export async function settle(): Promise<void> {
  for (;;) {
    await turn();
    if (queued.length === 0) return;
    for (const f of queued.splice(0)) f();
  }
}
