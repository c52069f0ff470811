// The torchrun environment contract: the variables every launcher (torchrun, `ragtune launch`, Slurm scripts,
// accelerate) sets for each worker. Parsing it is separate from opening the process group so the trainer can
// decide early (before loading a model) whether it runs distributed.
// ports torch/distributed/run.py (the variables it documents) and torch/distributed/rendezvous.py#_env_rendezvous_handler

/** One worker's place in a data-parallel run, as the launcher described it. */
export interface DistributedEnv {
  /** Global rank, 0 … worldSize-1 (RANK). */
  rank: number;
  /** Rank on this machine, 0 … localWorldSize-1 (LOCAL_RANK): picks the GPU and the CPU thread share. */
  localRank: number;
  /** Number of workers over all machines (WORLD_SIZE). */
  worldSize: number;
  /** Number of workers on this machine (LOCAL_WORLD_SIZE; defaults to worldSize as on one machine). */
  localWorldSize: number;
  /** Host of rank 0's rendezvous store (MASTER_ADDR). */
  masterAddr: string;
  /** Port of rank 0's rendezvous store (MASTER_PORT). */
  masterPort: number;
}

/** The variables read, in the order they are reported when missing. */
export const TORCHRUN_VARIABLES = [
  "RANK",
  "LOCAL_RANK",
  "WORLD_SIZE",
  "LOCAL_WORLD_SIZE",
  "MASTER_ADDR",
  "MASTER_PORT",
] as const;

function intVar(env: NodeJS.ProcessEnv, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  const n = Number(raw);
  if (raw === undefined || raw.trim() === "" || !Number.isInteger(n) || n < min || n > max)
    throw new Error(`${name} must be an integer in [${min}, ${max}], got "${raw ?? ""}"`);
  return n;
}

/**
 * The worker's place from the environment, or null when this process was not started by a launcher (WORLD_SIZE
 * unset): a plain single-process run. A partly set or inconsistent environment is an error naming the
 * variable, never a silent fallback to one process (which would train N unsynchronised copies).
 */
export function readDistributedEnv(env: NodeJS.ProcessEnv = process.env): DistributedEnv | null {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === "") {
    const stray = TORCHRUN_VARIABLES.filter((v) => v !== "WORLD_SIZE" && v !== "LOCAL_RANK" && env[v]);
    // LOCAL_RANK alone is what some notebook launchers leave behind; RANK without WORLD_SIZE is a broken launch.
    if (stray.includes("RANK"))
      throw new Error("RANK is set but WORLD_SIZE is not: set both (or neither for one process)");
    return null;
  }
  const worldSize = intVar(env, "WORLD_SIZE", 1);
  const rank = intVar(env, "RANK", 0, worldSize - 1);
  const localWorldSize =
    env.LOCAL_WORLD_SIZE === undefined ? worldSize : intVar(env, "LOCAL_WORLD_SIZE", 1, worldSize);
  const localRank = env.LOCAL_RANK === undefined ? rank : intVar(env, "LOCAL_RANK", 0, localWorldSize - 1);
  const masterAddr = env.MASTER_ADDR ?? "";
  if (worldSize > 1 && masterAddr.trim() === "")
    throw new Error("MASTER_ADDR must name rank 0's host when WORLD_SIZE > 1");
  const masterPort = intVar(env, "MASTER_PORT", 1, 65535);
  return { rank, localRank, worldSize, localWorldSize, masterAddr: masterAddr || "127.0.0.1", masterPort };
}

/** True for addresses that stay on this machine, where Gloo should bind the loopback interface. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}
