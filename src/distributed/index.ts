// Data-parallel training over torch.distributed (c10d): the layer between the engine and the trainer. It
// imports only src/engine and src/util.
export { launchWorkers, findFreePort, type LaunchOptions, type LaunchResult } from "./launcher.ts";
export { readDistributedEnv, isLoopback, TORCHRUN_VARIABLES, type DistributedEnv } from "./env.ts";
export {
  ProcessGroup,
  DEFAULT_BUCKET_BYTES,
  DEFAULT_TIMEOUT_MS,
  type Backend,
  type ProcessGroupOptions,
  type ReduceOp,
} from "./process-group.ts";
