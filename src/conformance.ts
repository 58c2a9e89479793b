// `vgpio/conformance`: the rule-by-rule check of a vhost-user-gpio back-end against virtio 1.2
// §5.18 that `vgpio conformance` runs. Loads the native addon.
export {
  runConformance,
  selectRules,
  formatResults,
  type ConformanceOptions,
  type RuleResult,
} from './conformance/conformance-runner.ts';
export { CommandInputDriver, ControlInputDriver, type InputDriver } from './conformance/input-driver.ts';
export type { Outcome, Strength } from './conformance/rule.ts';
export { HarnessError } from './conformance/harness-error.ts';
export { vhostUserTarget, type TargetOptions } from './conformance/vhost-user-target.ts';
