// Loads the libtorch addon (build/ragtune.node) and describes its functions. Everything that crosses into C++
// goes through this file; the rest of the engine wraps it in the Tensor API.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** An opaque native tensor handle (a type-tagged N-API External owning one at::Tensor). */
export type Handle = { readonly __brand: "ragtune.Handle" };

/**
 * Every libtorch (C++) exception surfaces as a TorchError: `op` names the operation and its argument
 * signature, the message is libtorch's own (shapes, dtypes and devices included).
 */
export class TorchError extends Error {
  readonly op: string;
  constructor(message: string, op: string) {
    super(`${op}: ${message}${dtypeAdvice(message)}`);
    this.name = "TorchError";
    this.op = op;
  }
}

/**
 * libtorch's "… not implemented for 'Half'" names a kernel and a C++ type; say it in the user's terms: which
 * dtype lacks the kernel, and what to use instead.
 */
function dtypeAdvice(message: string): string {
  const m = /not implemented for '(Half|BFloat16)'/.exec(message);
  if (!m) return "";
  const dtype = m[1] === "Half" ? "float16" : "bfloat16";
  return ` (libtorch has no kernel for this operation in ${dtype} on this device: use float32, or ${dtype === "float16" ? "bfloat16 on the CPU and float16 only on CUDA" : "a CUDA device"})`;
}

export interface BuildInfo {
  torchVersion: string;
  cudaBuild: boolean;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  cudaStats: boolean;
  hardwareConcurrency: number;
  fusedAttention: boolean;
  parallelInfo: string;
}

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
  maximize?: boolean;
}

/** An opaque c10d process group (native/distributed.cc); used only by src/distributed. */
export type GroupHandle = { readonly __brand: "ragtune.ProcessGroup" };

export interface NewProcessGroupOptions {
  backend: "gloo" | "nccl";
  masterAddr: string;
  masterPort: number;
  rank: number;
  worldSize: number;
  timeoutMs: number;
  /** Gloo: bind to this network interface (GLOO_SOCKET_IFNAME). */
  interface?: string;
  /** Gloo: bind to the address this name resolves to (loopback for single-machine runs). */
  hostname?: string;
}

type Arg = Handle | Handle[] | number | number[] | boolean | string | null | undefined;

/** The addon's exports (native/core.cc, native/ops.cc, native/training.cc, native/distributed.cc). */
export interface NativeAddon {
  setErrorClass(ctor: typeof TorchError): void;
  opNames(): string[];
  op(index: number, ...args: Arg[]): Handle | Handle[] | undefined;
  liveTensors(): number;
  dispose(h: Handle): void;
  isAlive(h: Handle): boolean;
  fromBytes(bytes: ArrayBufferView | ArrayBuffer, dtype: string, shape: number[], device?: string): Handle;
  toBytes(h: Handle): Buffer;
  item(h: Handle): number | boolean;
  meta(h: Handle): { shape: number[]; dtype: string; device: string };
  shape(h: Handle): number[];
  dtype(h: Handle): string;
  device(h: Handle): string;
  requiresGrad(h: Handle): boolean;
  setRequiresGrad(h: Handle, on: boolean): void;
  isLeaf(h: Handle): boolean;
  isContiguous(h: Handle): boolean;
  sameStorage(a: Handle, b: Handle): boolean;
  grad(h: Handle): Handle | null;
  setGrad(h: Handle, g: Handle | null): void;
  hasGrad(h: Handle): boolean;
  backward(h: Handle, gradient?: Handle | null, retainGraph?: boolean): void;
  backwardMany(roots: Handle[], gradients?: Handle[] | null, retainGraph?: boolean): void;
  setGradEnabled(on: boolean): boolean;
  isGradEnabled(): boolean;
  manualSeed(seed: number): void;
  getRngState(device?: string): Handle;
  setRngState(device: string, state: Handle): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  buildInfo(): BuildInfo;
  cudaSynchronize(): void;
  cudaMemory(device?: number): {
    allocated: number;
    peakAllocated: number;
    reserved: number;
    peakReserved: number;
  };
  cudaResetPeak(device?: number): void;
  cudaEmptyCache(): void;
  setAutocast(
    deviceType: "cuda" | "cpu",
    enabled: boolean,
    dtype?: string,
  ): { enabled: boolean; dtype: string };
  setTf32(enabled: boolean): boolean;
  adamwStep(params: Handle[], expAvgs: Handle[], expAvgSqs: Handle[], options: AdamWOptions): void;
  clipGradNorm(params: Handle[], maxNorm: number, normType?: number): number;
  gradNorm(params: Handle[], normType?: number): number;
  zeroGrad(params: Handle[], setToNone?: boolean): void;
  configureMalloc(mmapThreshold: number, trimThreshold: number): boolean;
  distributedInfo(): { gloo: boolean; nccl: boolean; missing?: string };
  // The rest are absent when the linked libtorch has no c10d headers (distributedInfo().missing says so).
  newProcessGroup?(options: NewProcessGroupOptions): GroupHandle;
  pgAllReduce?(g: GroupHandle, ts: Handle[], average: boolean, bucketBytes: number, grads: boolean): void;
  pgBroadcast?(g: GroupHandle, ts: Handle[], root: number, bucketBytes: number): void;
  pgAllGather?(g: GroupHandle, t: Handle): Handle[];
  pgAllGatherWithGrad?(g: GroupHandle, t: Handle): Handle;
  pgBarrier?(g: GroupHandle): void;
  pgDestroy?(g: GroupHandle): void;
}

const addonPath = fileURLToPath(new URL("../../build/ragtune.node", import.meta.url));

/**
 * How libtorch's OpenMP workers and OpenBLAS's threads wait for work, applied where the user set nothing. Both
 * libraries read these variables once, when the addon loads them, so they are set before the load.
 *
 * Why: on the CPU a libtorch op runs on OpenMP threads and a matmul on OpenBLAS's own pthread pool (Debian's
 * libtorch; its thread count follows the cores, not set_num_threads). By default each pool busy-waits after
 * its work (libgomp ~300k spins, OpenBLAS 2^28 cycles), so between two ops the idle pool keeps a core busy that
 * the other pool needs: with 2 threads on 2 cores every elementwise op that follows a matmul (and vice versa)
 * shares its second core with a spinning thread. The packed encoder, whose ops are ~2.7× smaller than a padded
 * batch's, lost most of its second thread to this. Passive waiting (sleep at once, woken by a futex) costs a
 * few µs per op instead. The user's own values win; `RAGTUNE_THREAD_WAIT=library` leaves both libraries'
 * defaults (for A/B measurement).
 */
export const THREAD_WAIT_DEFAULTS: Readonly<Record<string, string>> = {
  OMP_WAIT_POLICY: "PASSIVE",
  OPENBLAS_THREAD_TIMEOUT: "4", // 2^4 cycles, OpenBLAS's smallest: sleep right after the work
};

/** Sets the {@link THREAD_WAIT_DEFAULTS} the environment lacks; returns the values the libraries will read. */
export function applyThreadWaitDefaults(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const mode = env.RAGTUNE_THREAD_WAIT ?? "";
  if (mode !== "" && mode !== "passive" && mode !== "library")
    throw new Error(`RAGTUNE_THREAD_WAIT must be "passive" or "library", got "${mode}"`);
  const used: Record<string, string> = {};
  for (const [key, value] of Object.entries(THREAD_WAIT_DEFAULTS)) {
    // Left in the environment: child processes (distributed workers, the benchmarks' PyTorch side) inherit it.
    if ((env[key] === undefined || env[key] === "") && mode !== "library") env[key] = value;
    used[key] = env[key] || "(library default)";
  }
  return used;
}

/**
 * How glibc's malloc keeps freed memory (native/malloc-policy.cc says why): blocks up to 32 MiB from the heap
 * (glibc's largest mmap threshold) and up to 1 GiB free kept at the heap's top, so a training step reuses the
 * previous step's memory instead of faulting it in again. `RAGTUNE_MALLOC=library` keeps glibc's defaults (for
 * A/B measurement); so do the user's own `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_MAX_` or
 * a `GLIBC_TUNABLES` naming `glibc.malloc.`. Per process: N distributed ranks on one machine may each keep up to
 * 1 GiB of free heap.
 */
export const MALLOC_DEFAULTS = { mmapThreshold: 32 * 2 ** 20, trimThreshold: 2 ** 30 } as const;

/** The largest block ragtune's own code allocates where it can choose (attention blocks): below the mmap threshold. */
export const HEAP_BLOCK_BYTES = 16 * 2 ** 20;

/** What RAGTUNE_MALLOC and the environment ask for: ragtune's policy, glibc's defaults, or the user's settings. */
export function mallocMode(env: NodeJS.ProcessEnv = process.env): "keep" | "library" | "user" {
  const mode = env.RAGTUNE_MALLOC ?? "";
  if (mode !== "" && mode !== "keep" && mode !== "library")
    throw new Error(`RAGTUNE_MALLOC must be "keep" or "library", got "${mode}"`);
  if (mode === "library") return "library";
  const user =
    !!env.MALLOC_MMAP_MAX_ ||
    !!env.MALLOC_TRIM_THRESHOLD_ ||
    !!env.MALLOC_MMAP_THRESHOLD_ ||
    (env.GLIBC_TUNABLES ?? "").includes("glibc.malloc.");
  return user ? "user" : "keep";
}

function applyMallocPolicy(addon: NativeAddon): string {
  const mode = mallocMode();
  if (mode === "library") return "glibc defaults (RAGTUNE_MALLOC=library)";
  if (mode === "user") return "the user's glibc settings";
  const { mmapThreshold, trimThreshold } = MALLOC_DEFAULTS;
  return addon.configureMalloc(mmapThreshold, trimThreshold)
    ? "freed blocks up to 32 MiB kept for reuse (mmap threshold 32 MiB, trim above 1 GiB)"
    : "C library defaults (not glibc)";
}

function load(): NativeAddon {
  if (!existsSync(addonPath)) {
    throw new Error(
      `The ragtune native addon is not built (${addonPath} is missing).\n` +
        "Build it with: npm run build:native   (it needs libtorch: run `node scripts/find-libtorch.mjs` to see " +
        "which one is found, or read the README's 'Installing libtorch')",
    );
  }
  const require = createRequire(import.meta.url);
  let addon: NativeAddon;
  try {
    addon = require(addonPath) as NativeAddon;
  } catch (e) {
    throw new Error(
      `Loading ${addonPath} failed: ${(e as Error).message}\n` +
        "If libtorch moved or was upgraded since the build, rebuild with: npm run build:native",
    );
  }
  addon.setErrorClass(TorchError);
  // The addon uses every core by default; RAGTUNE_NUM_THREADS overrides it (small models and shared machines run
  // faster with fewer threads: OpenMP workers spin while they wait).
  const threads = process.env.RAGTUNE_NUM_THREADS;
  if (threads !== undefined && threads !== "") {
    const n = Number(threads);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`RAGTUNE_NUM_THREADS must be a positive integer, got "${threads}"`);
    addon.setNumThreads(n);
  }
  return addon;
}

/** The thread wait settings in force when the addon was loaded (OpenMP / OpenBLAS read them at load). */
export const threadWaitSettings: Readonly<Record<string, string>> = applyThreadWaitDefaults();
export const native: NativeAddon = load();
/** How freed CPU memory is kept (see {@link MALLOC_DEFAULTS}), in words. */
export const mallocPolicy: string = applyMallocPolicy(native);
