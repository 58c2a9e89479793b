export * from './constants.ts';
export * from './errors.ts';
export * from './config.ts';
export * from './names.ts';
export * from './messages.ts';
