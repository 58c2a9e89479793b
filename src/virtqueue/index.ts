export * from './guest-memory.ts';
export * from './split-ring.ts';
export * from './virtqueue-error.ts';
export * from './descriptor-chain.ts';
export * from './device-queue.ts';
export * from './driver-queue.ts';
export * from './guest-allocator.ts';
export * from './ring-placement.ts';
