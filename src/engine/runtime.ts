// Process-wide libtorch state: random generators, threads, CUDA devices and memory, mixed precision.
import { native, type BuildInfo } from "./native.ts";
import { Tensor, type Device, type DType } from "./tensor.ts";

/** Seeds every generator (CPU and all CUDA devices), like torch.manual_seed. */
export function manualSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new RangeError(`manualSeed: expected a non-negative integer, got ${seed}`);
  native.manualSeed(seed);
}

/** The state of a device's default generator as a uint8 tensor (torch.get_rng_state / cuda.get_rng_state). */
export function getRngState(device: Device = "cpu"): Tensor {
  return new Tensor(native.getRngState(device));
}

/** Restores a state returned by getRngState for the same device kind. */
export function setRngState(state: Tensor, device: Device = "cpu"): void {
  native.setRngState(device, state.handle);
}

/**
 * Runs fn and afterwards puts the generators of `devices` back where they were: the random state is "forked"
 * (torch.random.fork_rng), so fn's draws do not disturb the caller's sequence.
 */
export function forkRng<T>(fn: () => T, devices: readonly Device[] = ["cpu"]): T {
  const saved = devices.map((d) => [d, getRngState(d)] as const);
  try {
    return fn();
  } finally {
    for (const [d, s] of saved) {
      setRngState(s, d);
      s.dispose();
    }
  }
}

/** Intra-op threads libtorch uses on the CPU (ragtune sets it to the core count at load). */
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}

export function buildInfo(): BuildInfo {
  return native.buildInfo();
}

export function cudaAvailable(): boolean {
  return native.buildInfo().cudaAvailable;
}

/** "cuda" when a GPU is usable, else "cpu". */
export function defaultDevice(): Device {
  return cudaAvailable() ? "cuda" : "cpu";
}

/** Waits for all queued CUDA work (for timing); a no-op without CUDA. */
export function synchronize(): void {
  native.cudaSynchronize();
}

export interface CudaMemory {
  allocated: number;
  peakAllocated: number;
  reserved: number;
  peakReserved: number;
}
/** CUDA caching-allocator statistics in bytes (zeros on CPU-only builds). */
export function cudaMemory(deviceIndex = 0): CudaMemory {
  return native.cudaMemory(deviceIndex);
}
export function cudaResetPeakMemory(deviceIndex = 0): void {
  native.cudaResetPeak(deviceIndex);
}
export function cudaEmptyCache(): void {
  native.cudaEmptyCache();
}

/** TF32 tensor cores for float32 matmuls on CUDA (the recipe's tf32=True). Returns the previous setting. */
export function setTf32(enabled: boolean): boolean {
  return native.setTf32(enabled);
}

/**
 * Runs fn under automatic mixed precision (torch.autocast): matmuls and attention in `dtype` (bfloat16 by
 * default), reductions and losses in float32. Restores the previous state afterwards.
 */
export function autocast<T>(
  fn: () => T,
  options: { deviceType?: "cuda" | "cpu"; dtype?: DType; enabled?: boolean } = {},
): T {
  const deviceType = options.deviceType ?? "cuda";
  if (options.enabled === false) return fn();
  // The previous flag and dtype come back from the call, so nested regions restore their outer one exactly.
  const prev = native.setAutocast(deviceType, true, options.dtype ?? "bfloat16");
  try {
    return fn();
  } finally {
    native.setAutocast(deviceType, prev.enabled, prev.dtype);
  }
}
