// Shared machinery of the benchmarks in bench/: options, timing and statistics, the machine context, finding and
// running the PyTorch reference (bench/reference/*.py), comparison lines against the target ratio, and output
// (a human table on stdout, or one JSON object on stdout with --json; progress always goes to stderr).
//
// Methodology, identical on both sides (bench/reference/common.py mirrors timeIt): `warmup` untimed calls, then
// `repeat` calls each timed on its own, with a device synchronisation before starting and before stopping the
// clock (a no-op on the CPU); the median is the headline number, the minimum is printed next to it.
// runInterleaved keeps the reference script alive (--serve) and alternates blocks of ragtune and PyTorch
// repetitions (ABBA over `rounds`), so background load on a shared machine weighs on both sides alike (the
// per-round "paired" ratios are the most robust comparison there);
// runReference is the one-shot alternative (spawn, read one JSON object) for work that cannot be interleaved.
import { spawn, spawnSync, type ChildProcessByStdio } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { parseArgs, type ParseArgsConfig } from "node:util";
import {
  buildInfo,
  threadWaitSettings,
  mallocPolicy,
  MALLOC_DEFAULTS,
  cudaAvailable,
  getNumThreads,
  isDType,
  setNumThreads,
  synchronize,
  type Device,
  type DType,
} from "../src/engine/index.ts";

/** Every line's pass mark: ragtune's time at most 10% above PyTorch's (time ratio ragtune_ms / torch_ms). */
export const TARGET_RATIO = 1.1;

export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
export const REFERENCE_DIR = fileURLToPath(new URL("./reference/", import.meta.url));

// ---------------------------------------------------------------------------------------------------------
// Options

/** ragtune's malloc settings (src/engine/native.ts MALLOC_DEFAULTS) as glibc tunables. */
const SAME_MALLOC_TUNABLES = `glibc.malloc.mmap_threshold=${MALLOC_DEFAULTS.mmapThreshold}:glibc.malloc.trim_threshold=${MALLOC_DEFAULTS.trimThreshold}`;
/** The environment of the PyTorch reference processes (set by parseCli from --torch-malloc). */
let referenceEnv: NodeJS.ProcessEnv = process.env;

/** What the PyTorch side's malloc does (for the context line). */
export function referenceMalloc(): string {
  return referenceEnv.GLIBC_TUNABLES === SAME_MALLOC_TUNABLES
    ? `ragtune's settings (GLIBC_TUNABLES=${SAME_MALLOC_TUNABLES})`
    : "glibc defaults";
}

/** The options every benchmark takes; a benchmark adds its own with `extra`. */
export const COMMON_OPTIONS = {
  json: { type: "boolean", default: false },
  device: { type: "string", default: "cpu" },
  dtype: { type: "string", default: "float32" },
  repeat: { type: "string" },
  warmup: { type: "string" },
  rounds: { type: "string" },
  threads: { type: "string" },
  seed: { type: "string", default: "0" },
  "no-reference": { type: "boolean", default: false },
  "torch-malloc": { type: "string", default: "default" },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

export const COMMON_HELP = `Common options:
  --json              one JSON object on stdout instead of the table
  --device cpu|cuda   where to run (default cpu)
  --dtype NAME        float32 (default), bfloat16, float16
  --repeat N          timed repetitions per line (median and min are reported)
  --warmup N          untimed calls before each side's first timed call of a line
  --rounds N          alternate ragtune and PyTorch blocks N times, the repetitions split between them
                      (default: as many rounds as repetitions, i.e. one call per block)
  --threads N         libtorch intra-op threads on both sides (default: ragtune's, i.e. the core count)
  --seed N            seed of the inputs (default 0)
  --no-reference      do not run the PyTorch reference
  --torch-malloc default|same  PyTorch's malloc: glibc's defaults, as PyTorch runs for its users (default),
                      or ragtune's settings (mmap threshold 32 MiB, trim above 1 GiB) as GLIBC_TUNABLES, for an A/B
                      (RAGTUNE_MALLOC=library gives ragtune glibc's defaults)
Environment: RAGTUNE_PYTHON=/path/to/python selects the Python (with torch) that runs the reference.`;

export interface CommonArgs {
  json: boolean;
  device: Device;
  dtype: DType;
  repeat: number;
  warmup: number;
  rounds: number;
  threads: number;
  seed: number;
  reference: boolean;
}

/** Parses argv (strict: unknown options are errors). Prints `usage` and exits on --help. */
export function parseCli<const E extends NonNullable<ParseArgsConfig["options"]>>(
  extra: E,
  defaults: { repeat: number; warmup: number; rounds?: number },
  usage: string,
): { common: CommonArgs; values: Record<keyof E, string | boolean | undefined> } {
  let parsed;
  try {
    parsed = parseArgs({ options: { ...COMMON_OPTIONS, ...extra }, strict: true, allowPositionals: false });
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${usage}\n\n${COMMON_HELP}`);
    process.exit(2);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) {
    console.log(`${usage}\n\n${COMMON_HELP}`);
    process.exit(0);
  }
  const device = String(v.device);
  if (!/^(cpu|cuda(:\d+)?)$/.test(device))
    usageError(`--device: expected cpu, cuda or cuda:N, got ${device}`);
  if (device.startsWith("cuda") && !cudaAvailable()) {
    const b = buildInfo();
    usageError(
      `--device ${device}: CUDA is not usable here (libtorch ${b.torchVersion}, CUDA build: ${b.cudaBuild}, ` +
        `devices: ${b.cudaDeviceCount}); build the addon against a CUDA libtorch on a GPU machine`,
    );
  }
  const dtype = String(v.dtype);
  if (!isDType(dtype) || !["float32", "bfloat16", "float16", "float64"].includes(dtype))
    usageError(`--dtype: expected float32, bfloat16, float16 or float64, got ${dtype}`);
  const torchMalloc = String(v["torch-malloc"]);
  if (torchMalloc !== "default" && torchMalloc !== "same")
    usageError(`--torch-malloc: expected default or same, got ${torchMalloc}`);
  referenceEnv =
    torchMalloc === "same" ? { ...process.env, GLIBC_TUNABLES: SAME_MALLOC_TUNABLES } : process.env;
  const threads = intOption(v.threads, "threads", 0, 1);
  const repeat = intOption(v.repeat, "repeat", defaults.repeat, 1);
  if (threads > 0) setNumThreads(threads);
  return {
    common: {
      json: Boolean(v.json),
      device: device as Device,
      dtype: dtype as DType,
      repeat,
      warmup: intOption(v.warmup, "warmup", defaults.warmup, 0),
      rounds: Math.min(repeat, intOption(v.rounds, "rounds", defaults.rounds ?? repeat, 1)),
      threads: getNumThreads(),
      seed: intOption(v.seed, "seed", 0, 0),
      reference: !v["no-reference"],
    },
    values: v as Record<keyof E, string | boolean | undefined>,
  };
}

/** An integer option: `fallback` when absent, an error below `min` or when not an integer. */
export function intOption(
  value: string | boolean | undefined,
  name: string,
  fallback: number,
  min = 0,
): number {
  if (value === undefined || value === false) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) usageError(`--${name}: expected an integer ≥ ${min}, got ${value}`);
  return n;
}

export function usageError(message: string): never {
  console.error(message);
  process.exit(2);
}

/** Progress to stderr (stdout stays clean for --json). */
export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// Timing and statistics

export interface Timing {
  medianMs: number;
  minMs: number;
  meanMs: number;
  samplesMs: number[];
  /**
   * CPU contention while the timed calls ran: how long some task waited for a CPU (Linux PSI,
   * /proc/pressure/cpu "some", system-wide) out of the wall time of the timed loops. Absent off Linux.
   */
  pressure?: Pressure;
  /** Process CPU time (user + system, all threads) spent in the timed calls, in total. */
  cpuMs?: number;
  /** Minor page faults of the process during the timed calls, in total (fresh memory touched: allocator behaviour). */
  minorFaults?: number;
}

export interface Pressure {
  stallMs: number;
  wallMs: number;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarize(
  samplesMs: number[],
  pressure?: Pressure | null,
  cpuMs?: number | null,
  minorFaults?: number | null,
): Timing {
  const t: Timing = {
    medianMs: median(samplesMs),
    minMs: Math.min(...samplesMs),
    meanMs: samplesMs.reduce((a, b) => a + b, 0) / samplesMs.length,
    samplesMs,
  };
  if (pressure) t.pressure = pressure;
  if (cpuMs !== undefined && cpuMs !== null) t.cpuMs = cpuMs;
  if (minorFaults !== undefined && minorFaults !== null) t.minorFaults = minorFaults;
  return t;
}

/** Total CPU stall time of the system in ms (PSI "some"), or null where the kernel does not expose it. */
export function cpuStallMs(): number | null {
  try {
    const m = /^some .*total=(\d+)/m.exec(readFileSync("/proc/pressure/cpu", "utf8"));
    return m ? Number(m[1]) / 1e3 : null;
  } catch {
    return null;
  }
}

/** Adds pressure readings (null stays null). */
export function addPressure(a: Pressure | null | undefined, b: Pressure | null | undefined): Pressure | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return { stallMs: a.stallMs + b.stallMs, wallMs: a.wallMs + b.wallMs };
}

export const pressurePercent = (p: Pressure | null | undefined): number | null =>
  p && p.wallMs > 0 ? (100 * p.stallMs) / p.wallMs : null;

/**
 * Median/min/mean of `repeat` individually timed calls of fn after `warmup` untimed ones, in milliseconds.
 * On CUDA the device is synchronised before starting and before stopping each clock. Wrap fn's body in
 * `tidy` so every iteration frees what it allocates.
 */
export function timeIt(fn: () => void, options: { warmup: number; repeat: number; device: Device }): Timing {
  const sync = options.device.startsWith("cuda") ? synchronize : () => {};
  for (let i = 0; i < options.warmup; i++) fn();
  sync();
  const samples: number[] = [];
  const stall0 = cpuStallMs();
  const cpu0 = process.cpuUsage();
  const faults0 = process.resourceUsage().minorPageFault;
  const wall0 = performance.now();
  for (let i = 0; i < options.repeat; i++) {
    sync();
    const t0 = performance.now();
    fn();
    sync();
    samples.push(performance.now() - t0);
  }
  const wall1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const faults = process.resourceUsage().minorPageFault - faults0;
  const stall1 = cpuStallMs();
  const pressure =
    stall0 === null || stall1 === null ? null : { stallMs: stall1 - stall0, wallMs: wall1 - wall0 };
  return summarize(samples, pressure, (cpu.user + cpu.system) / 1e3, faults);
}

/** n integers in [low, high] from a 32-bit LCG; bench/reference/common.py's lcg_lengths gives the same. */
export function lcgLengths(seed: number, n: number, low: number, high: number): number[] {
  let state = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out.push(low + ((state >>> 8) % (high - low + 1)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Machine context

export interface LibtorchJson {
  source?: string;
  version?: { string?: string };
  blas?: string;
  cuda?: boolean;
}

export interface Context {
  libtorch: string;
  libtorchSource: string;
  threads: number;
  parallelBackend: string;
  /** What the build recorded (build/libtorch.json). */
  blas: string;
  /** BLAS/LAPACK libraries actually mapped into this process (Linux). */
  blasLoaded: string[];
  device: string;
  deviceName?: string;
  cpu: string;
  cores: number;
  loadAverage: number[];
  node: string;
  /** How the OpenMP / OpenBLAS threads wait between ops (src/engine/native.ts); PyTorch inherits the same. */
  threadWait: Record<string, string>;
  /** How each side allocates CPU tensor memory (ragtune: src/engine/native.ts mallocPolicy). */
  malloc: { ragtune: string; pytorch: string };
}

export function readLibtorchJson(): LibtorchJson | null {
  const p = fileURLToPath(new URL("../build/libtorch.json", import.meta.url));
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, "utf8")) as LibtorchJson;
  } catch {
    return null;
  }
}

/** Basenames of the BLAS/LAPACK libraries mapped into this process (empty off Linux). */
export function loadedBlas(): string[] {
  try {
    const names = new Set<string>();
    for (const line of readFileSync("/proc/self/maps", "utf8").split("\n")) {
      const path = line.split(/\s+/)[5];
      if (!path?.includes("/")) continue;
      const base = path.slice(path.lastIndexOf("/") + 1);
      if (/blas|mkl|lapack|accelerate/i.test(base)) names.add(base);
    }
    return [...names].sort();
  } catch {
    return [];
  }
}

function gpuName(device: string): string | undefined {
  if (!device.startsWith("cuda")) return undefined;
  const index = device.includes(":") ? device.split(":")[1] : "0";
  const r = spawnSync("nvidia-smi", ["--query-gpu=name", "--format=csv,noheader", `--id=${index}`], {
    encoding: "utf8",
    timeout: 10_000,
  });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export function machineContext(device: Device): Context {
  const info = buildInfo();
  const lt = readLibtorchJson();
  const backend = /ATen parallel backend:\s*(.+)/.exec(info.parallelInfo)?.[1]?.trim() ?? "unknown";
  const ctx: Context = {
    libtorch: info.torchVersion,
    libtorchSource: lt?.source ?? "unknown",
    threads: getNumThreads(),
    parallelBackend: backend,
    blas: lt?.blas ?? "unknown (build/libtorch.json missing)",
    blasLoaded: loadedBlas(),
    device,
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    threadWait: { ...threadWaitSettings },
    malloc: { ragtune: mallocPolicy, pytorch: referenceMalloc() },
  };
  const name = gpuName(device);
  if (name) ctx.deviceName = name;
  return ctx;
}

export function printContext(ctx: Context, reference: ReferenceOutcome): void {
  const lines = [
    `ragtune: libtorch ${ctx.libtorch} (${ctx.libtorchSource}), ${ctx.threads} threads (${ctx.parallelBackend}), ` +
      `BLAS ${ctx.blas}${ctx.blasLoaded.length ? ` [loaded: ${ctx.blasLoaded.join(", ")}]` : ""}`,
    `device: ${ctx.device}${ctx.deviceName ? ` (${ctx.deviceName})` : ""}; CPU ${ctx.cpu}, ${ctx.cores} cores, ` +
      `load average ${ctx.loadAverage.join(" ")}; node ${ctx.node}`,
    `thread wait (both sides, inherited by PyTorch): ${Object.entries(ctx.threadWait)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ")}`,
    `malloc: ragtune ${ctx.malloc.ragtune}; PyTorch ${ctx.malloc.pytorch}`,
  ];
  if (reference.ran) {
    const c = reference.context;
    lines.push(
      `PyTorch: torch ${String(c.torchVersion)} (${reference.python}), ${String(c.threads)} threads ` +
        `(${String(c.parallelBackend)}), BLAS [${asStrings(c.blas).join(", ")}]` +
        (c.deviceName ? `, ${String(c.deviceName)}` : ""),
    );
  } else {
    lines.push(`PyTorch: reference NOT run — ${reference.reason}`);
  }
  const busy = ctx.loadAverage[0] !== undefined && ctx.loadAverage[0] > ctx.cores * 0.75;
  if (busy && ctx.device === "cpu")
    lines.push(
      `warning: the 1-minute load average (${ctx.loadAverage[0]}) is high for ${ctx.cores} cores: other ` +
        "processes compete for the CPU and the timings may be noisy",
    );
  for (const l of lines) console.log(l);
}

function asStrings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}

// ---------------------------------------------------------------------------------------------------------
// The PyTorch reference

export type ReferenceOutcome =
  | { ran: true; python: string; context: Record<string, unknown>; output: Record<string, unknown> }
  | { ran: false; reason: string };

export interface TorchPython {
  python: string;
  torchVersion: string;
}

/**
 * The first Python that imports torch among $RAGTUNE_PYTHON, python3 (PATH) and /usr/bin/python3 (Debian's,
 * which has python3-torch where the system libtorch is installed). `tried` says why each one was rejected.
 */
export function findTorchPython(): { found: TorchPython | null; tried: string[] } {
  const env = process.env.RAGTUNE_PYTHON;
  const candidates = [...new Set([...(env ? [env] : []), "python3", "/usr/bin/python3"])];
  const tried: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ["-c", "import torch; print(torch.__version__)"], {
      encoding: "utf8",
      timeout: 120_000,
    });
    if (r.status === 0) return { found: { python, torchVersion: r.stdout.trim() }, tried };
    const why = r.error
      ? r.error.message
      : (r.stderr.trim().split("\n").pop() ?? `exit status ${String(r.status)}`);
    tried.push(`${python}: ${why}`);
  }
  return { found: null, tried };
}

export const ENABLE_REFERENCE_HINT =
  "install PyTorch for a Python (Debian: sudo apt-get install python3-torch, then /usr/bin/python3 is used; " +
  "or pip install torch) or point RAGTUNE_PYTHON at a Python that has it";

/**
 * Runs bench/reference/<script> with args under the first Python that has torch and parses the JSON object it
 * prints on stdout (its stderr passes through as progress). Never throws: a failure is an outcome with a reason.
 */
export function runReference(script: string, args: readonly string[], timeoutMs = 600_000): ReferenceOutcome {
  const { found, tried } = findTorchPython();
  if (!found) {
    return {
      ran: false,
      reason: `no Python with torch found (tried ${tried.join("; ")}); ${ENABLE_REFERENCE_HINT}`,
    };
  }
  const path = `${REFERENCE_DIR}${script}`;
  log(`[torch] ${found.python} ${script} ${args.join(" ")} (torch ${found.torchVersion})`);
  const r = spawnSync(found.python, ["-B", path, ...args], {
    env: referenceEnv,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 1024 * 1024,
    timeout: timeoutMs,
  });
  if (r.error) return { ran: false, reason: `${found.python} ${script} failed: ${r.error.message}` };
  if (r.status !== 0)
    return { ran: false, reason: `${found.python} ${script} exited with status ${r.status}` };
  const last = r.stdout.trim().split("\n").pop() ?? "";
  try {
    const output = JSON.parse(last) as Record<string, unknown>;
    return {
      ran: true,
      python: found.python,
      context: (output.context ?? {}) as Record<string, unknown>,
      output,
    };
  } catch {
    return { ran: false, reason: `${script} printed no JSON (last stdout line: ${last.slice(0, 200)})` };
  }
}

/** The reference's timing of one case id, if it measured it (one-shot outputs of runReference). */
export function referenceTiming(ref: ReferenceOutcome, id: string): Timing | null {
  if (!ref.ran) return null;
  const results = ref.output.results as Record<string, Timing> | undefined;
  return results?.[id] ?? null;
}

/**
 * A reference script running in `--serve` mode (bench/reference/common.py: run_cases): it builds its inputs
 * once, then times one case per request, so the driver can alternate ragtune and PyTorch blocks.
 */
export class ReferenceProcess {
  #child: ChildProcessByStdio<Writable, Readable, null>;
  #lines: AsyncIterator<string>;
  #exit: string | null = null;

  private constructor(
    readonly python: string,
    readonly script: string,
    child: ChildProcessByStdio<Writable, Readable, null>,
  ) {
    this.#child = child;
    this.#lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    child.on("exit", (code, signal) => {
      this.#exit = signal ? `killed by ${signal}` : `exited with status ${String(code)}`;
    });
    child.on("error", (e) => {
      this.#exit = e.message;
    });
  }

  /** The reference's context line ({"ready": true, "context": …}) once started. */
  context: Record<string, unknown> = {};
  cases: string[] = [];

  /** Starts `bench/reference/<script> ...args --serve` under the first Python with torch. */
  static async start(
    script: string,
    args: readonly string[],
  ): Promise<ReferenceProcess | { reason: string }> {
    const { found, tried } = findTorchPython();
    if (!found) {
      return { reason: `no Python with torch found (tried ${tried.join("; ")}); ${ENABLE_REFERENCE_HINT}` };
    }
    log(`[torch] ${found.python} ${script} ${args.join(" ")} --serve (torch ${found.torchVersion})`);
    const child = spawn(found.python, ["-B", `${REFERENCE_DIR}${script}`, ...args, "--serve"], {
      env: referenceEnv,
      stdio: ["pipe", "pipe", "inherit"],
    });
    const ref = new ReferenceProcess(found.python, script, child);
    try {
      const ready = await ref.#next();
      if (ready.ready !== true)
        throw new Error(`unexpected first line ${JSON.stringify(ready).slice(0, 200)}`);
      ref.context = (ready.context ?? {}) as Record<string, unknown>;
      ref.cases = (ready.cases ?? []) as string[];
      return ref;
    } catch (e) {
      ref.kill();
      return { reason: `${found.python} ${script} did not start: ${(e as Error).message}` };
    }
  }

  async #next(): Promise<Record<string, unknown>> {
    const r = await this.#lines.next();
    if (r.done) {
      // Let the exit event land so the reason says how it ended.
      await new Promise((resolve) => setTimeout(resolve, 50));
      throw new Error(`the reference process ended (${this.#exit ?? "stdout closed"})`);
    }
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(r.value) as Record<string, unknown>;
    } catch {
      throw new Error(`the reference printed a non-JSON line: ${r.value.slice(0, 200)}`);
    }
    if (typeof obj.error === "string") throw new Error(`the reference answered: ${obj.error}`);
    return obj;
  }

  async #request(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.#exit) throw new Error(`the reference process ended (${this.#exit})`);
    this.#child.stdin.write(`${JSON.stringify(cmd)}\n`);
    return this.#next();
  }

  /** Times one case there: `warmup` untimed calls, then `repeat` timed ones. */
  async run(id: string, warmup: number, repeat: number, settleMs: number): Promise<Timing> {
    const r = await this.#request({ cmd: "run", id, warmup, repeat, settleMs });
    if (r.id !== id || !Array.isArray(r.samplesMs)) throw new Error(`bad answer for ${id}`);
    return r as unknown as Timing;
  }

  /** Asks for the closing object (checksums and the like) and lets the process exit. */
  async finish(): Promise<Record<string, unknown>> {
    const r = await this.#request({ cmd: "quit" });
    this.#child.stdin.end();
    return r;
  }

  kill(): void {
    if (!this.#exit) this.#child.kill();
  }
}

/** One measured case: ragtune's side as a callable (wrap its body in tidy), the reference's by id. */
export interface BenchCase {
  id: string;
  label: string;
  /** Floating-point operations of one call, when a GFLOP/s figure makes sense. */
  flops?: number;
  run: () => void;
}

export interface InterleaveOptions {
  rounds: number;
  warmup: number;
  repeat: number;
  device: Device;
  /** Pause before each block so the other process's spinning OpenMP/BLAS threads go idle (CPU). */
  settleMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `repeat` spread over `rounds` blocks (the first blocks take the remainder). */
export function splitRepeats(repeat: number, rounds: number): number[] {
  const r = Math.max(1, Math.min(rounds, repeat));
  return Array.from({ length: r }, (_, i) => Math.floor(repeat / r) + (i < repeat % r ? 1 : 0));
}

/**
 * Runs every case on both sides in alternating blocks: round i times case c in ragtune then in PyTorch (odd
 * rounds the other way round, ABBA), each block with its share of the repetitions (one each when rounds =
 * repeat, the default), so bursts and drifts of background load hit both sides alike. The warm-up calls run
 * before each side's first block only (later blocks find the process warm; `settleMs` lets the other process's
 * spinning OpenMP/OpenBLAS threads go idle first). Without a reference (or once it fails) ragtune runs alone.
 * Returns the comparison lines, each with its per-round paired ratios, and the reference's outcome.
 */
export async function runInterleaved(
  script: string,
  scriptArgs: readonly string[],
  cases: readonly BenchCase[],
  options: InterleaveOptions & { reference: boolean },
): Promise<{ results: LineResult[]; reference: ReferenceOutcome }> {
  let ref: ReferenceProcess | null = null;
  let failure: string | null = null;
  if (options.reference) {
    const started = await ReferenceProcess.start(script, scriptArgs);
    if (started instanceof ReferenceProcess) ref = started;
    else failure = started.reason;
  } else {
    failure = `--no-reference given; ${ENABLE_REFERENCE_HINT}`;
  }
  const settleMs = options.settleMs ?? (options.device === "cpu" ? 150 : 0);
  interface Pool {
    samples: number[];
    pressure: Pressure | null;
    cpuMs: number | null;
    minorFaults: number | null;
    blockMedians: number[];
  }
  const newPools = () =>
    new Map<string, Pool>(
      cases.map((c) => [c.id, { samples: [], pressure: null, cpuMs: 0, minorFaults: 0, blockMedians: [] }]),
    );
  const mine = newPools();
  const theirs = newPools();
  const pool = (into: Pool, t: Timing): void => {
    into.samples.push(...t.samplesMs);
    into.pressure = addPressure(into.pressure, t.pressure);
    into.cpuMs = into.cpuMs === null || t.cpuMs === undefined ? null : into.cpuMs + t.cpuMs;
    into.minorFaults =
      into.minorFaults === null || t.minorFaults === undefined ? null : into.minorFaults + t.minorFaults;
    into.blockMedians.push(t.medianMs);
  };
  const blocks = splitRepeats(options.repeat, options.rounds);
  try {
    for (const [round, repeat] of blocks.entries()) {
      const warmup = round === 0 ? options.warmup : 0;
      for (const c of cases) {
        const sides = round % 2 === 0 ? (["ragtune", "torch"] as const) : (["torch", "ragtune"] as const);
        for (const side of sides) {
          if (side === "ragtune") {
            log(`[round ${round + 1}/${blocks.length}] ragtune ${c.id}`);
            if (ref && settleMs > 0) await sleep(settleMs);
            pool(mine.get(c.id)!, timeIt(c.run, { warmup, repeat, device: options.device }));
          } else if (ref) {
            log(`[round ${round + 1}/${blocks.length}] torch   ${c.id}`);
            try {
              pool(theirs.get(c.id)!, await ref.run(c.id, warmup, repeat, settleMs));
            } catch (e) {
              failure = `${ref.python} ${script} failed: ${(e as Error).message}`;
              log(`[torch] ${failure}; continuing without the reference`);
              ref.kill();
              ref = null;
            }
          }
        }
      }
    }
    let reference: ReferenceOutcome = { ran: false, reason: failure ?? "not run" };
    if (ref) {
      const closing = await ref.finish().catch((e: Error) => {
        failure = `${ref?.python} ${script} failed at the end: ${e.message}`;
        return null;
      });
      if (closing) reference = { ran: true, python: ref.python, context: ref.context, output: closing };
      else reference = { ran: false, reason: failure ?? "no closing output" };
    }
    const results = cases.map((c) => {
      const m = mine.get(c.id)!;
      const t = theirs.get(c.id)!;
      const complete = reference.ran && t.blockMedians.length === m.blockMedians.length;
      return compare({
        id: c.id,
        label: c.label,
        ...(c.flops === undefined ? {} : { flops: c.flops }),
        ragtune: summarize(m.samples, m.pressure, m.cpuMs, m.minorFaults),
        torch: complete ? summarize(t.samples, t.pressure, t.cpuMs, t.minorFaults) : null,
        ...(complete ? { pairedRatios: m.blockMedians.map((x, i) => x / t.blockMedians[i]!) } : {}),
      });
    });
    return { results, reference };
  } finally {
    ref?.kill();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Comparison lines and output

export interface Line {
  id: string;
  label: string;
  /** Floating-point operations of one call, when a GFLOP/s figure makes sense. */
  flops?: number;
  ragtune: Timing;
  torch: Timing | null;
  /** ragtune / PyTorch block medians of each round (runInterleaved), adjacent in time. */
  pairedRatios?: number[];
}

export interface LineResult {
  id: string;
  label: string;
  ragtune: Timing & { gflops?: number };
  torch: (Timing & { gflops?: number }) | null;
  /** ragtune median time / PyTorch median time (≤ TARGET_RATIO passes). */
  ratio: number | null;
  /** ragtune min time / PyTorch min time (less sensitive to background load). */
  ratioMin: number | null;
  /** Median of the per-round ratios (each pairs blocks run back to back: robust to drifting load). */
  ratioPaired: number | null;
  /** ragtune / PyTorch process CPU time per call (user + system): insensitive to time slicing by other load. */
  ratioCpu: number | null;
  pairedRatios?: number[];
  pass: boolean | null;
}

const gflops = (flops: number | undefined, ms: number): number | undefined =>
  flops === undefined ? undefined : flops / (ms * 1e6);

export function compare(line: Line): LineResult {
  const t = line.torch;
  const ratio = t ? line.ragtune.medianMs / t.medianMs : null;
  const withRate = (x: Timing): Timing & { gflops?: number } => {
    const g = gflops(line.flops, x.medianMs);
    return g === undefined ? x : { ...x, gflops: g };
  };
  return {
    id: line.id,
    label: line.label,
    ragtune: withRate(line.ragtune),
    torch: t ? withRate(t) : null,
    ratio,
    ratioMin: t ? line.ragtune.minMs / t.minMs : null,
    ratioPaired: line.pairedRatios?.length ? median(line.pairedRatios) : null,
    ratioCpu:
      t?.cpuMs !== undefined && line.ragtune.cpuMs !== undefined && t.cpuMs > 0
        ? line.ragtune.cpuMs / line.ragtune.samplesMs.length / (t.cpuMs / t.samplesMs.length)
        : null,
    ...(line.pairedRatios ? { pairedRatios: line.pairedRatios } : {}),
    pass: ratio === null ? null : ratio <= TARGET_RATIO,
  };
}

export const fmtMs = (ms: number): string =>
  ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
export const fmtRatio = (r: number | null): string => (r === null ? "—" : r.toFixed(2));

/** Prints rows under headers, columns padded; `align` per column ("l" or "r", default right except the first). */
export function printTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  align?: string,
): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const cell = (s: string, i: number): string =>
    (align?.[i] ?? (i === 0 ? "l" : "r")) === "l" ? s.padEnd(widths[i]!) : s.padStart(widths[i]!);
  const fmt = (r: readonly string[]): string =>
    r
      .map((s, i) => cell(s, i))
      .join("  ")
      .trimEnd();
  console.log(fmt(headers));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(fmt(r));
}

/** The standard comparison table: time and rate on each side, both ratios, the verdict. */
export function printComparison(results: readonly LineResult[]): void {
  const rate = (x: { gflops?: number } | null): string =>
    x?.gflops === undefined ? "" : x.gflops.toFixed(1);
  const rows = results.map((r) => [
    r.label,
    fmtMs(r.ragtune.medianMs),
    fmtMs(r.ragtune.minMs),
    rate(r.ragtune),
    r.torch ? fmtMs(r.torch.medianMs) : "—",
    r.torch ? fmtMs(r.torch.minMs) : "—",
    r.torch ? rate(r.torch) : "—",
    fmtRatio(r.ratio),
    fmtRatio(r.ratioMin),
    fmtRatio(r.ratioPaired),
    fmtRatio(r.ratioCpu),
    (r.pass === null ? "—" : r.pass ? "PASS" : `over ${TARGET_RATIO.toFixed(2)}`) + (isNoisy(r) ? " *" : ""),
  ]);
  printTable(
    [
      "benchmark",
      "ragtune ms",
      "min",
      "GFLOP/s",
      "PyTorch ms",
      "min",
      "GFLOP/s",
      "ratio",
      "min",
      "paired",
      "cpu",
      `target ≤${TARGET_RATIO.toFixed(2)}`,
    ],
    rows,
  );
  console.log(
    "ms = median of the timed calls; ratio = ragtune time / PyTorch time, lower is better on every line " +
      "(GFLOP/s lines included): of the medians (the target's), of the minima, paired = median of the " +
      "per-round ratios of calls run back to back, cpu = of the process CPU time per call (user + system)",
  );
  if (results.some(isNoisy))
    console.log(
      `* CPU contention over ${NOISY_PRESSURE_PERCENT}% while timing this line (other processes ran): its ` +
        "wall-clock ratios are unreliable; the paired and cpu ratios hold up best",
    );
  for (const r of results) {
    const mine = faultsPerCall(r.ragtune);
    const theirs = faultsPerCall(r.torch);
    if (mine === null || theirs === null) continue;
    if (Math.max(mine, theirs) > 1000 && Math.max(mine, theirs) > 2 * Math.min(mine, theirs))
      console.log(
        `note: ${r.label}: ${mine.toFixed(0)} vs ${theirs.toFixed(0)} minor page faults per call (ragtune vs ` +
          "PyTorch): one side's allocator handed out fresh pages (glibc malloc state, i.e. process history), " +
          "which costs time on that side independently of the op itself",
      );
  }
  const total = (side: "ragtune" | "torch") =>
    pressurePercent(results.reduce<Pressure | null>((acc, r) => addPressure(acc, r[side]?.pressure), null));
  const mine = total("ragtune");
  const theirs = total("torch");
  if (mine !== null) {
    const noisy = Math.max(mine, theirs ?? 0) > NOISY_PRESSURE_PERCENT;
    console.log(
      `CPU contention while timing (share of the wall time some task waited for a CPU, /proc/pressure/cpu): ` +
        `ragtune ${mine.toFixed(0)}%${theirs === null ? "" : `, PyTorch ${theirs.toFixed(0)}%`}` +
        (noisy
          ? ` — over ${NOISY_PRESSURE_PERCENT}%: other processes competed for the CPU, rerun on a quiet machine`
          : ""),
    );
  }
}

/** Above this CPU pressure during the timed calls, a CPU run is flagged as noisy. */
export const NOISY_PRESSURE_PERCENT = 10;

const faultsPerCall = (t: Timing | null): number | null =>
  t?.minorFaults === undefined ? null : t.minorFaults / t.samplesMs.length;

/** Whether either side of a line was timed under CPU contention (NOISY_PRESSURE_PERCENT). */
export function isNoisy(r: LineResult): boolean {
  const p = [pressurePercent(r.ragtune.pressure), pressurePercent(r.torch?.pressure)];
  return p.some((x) => x !== null && x > NOISY_PRESSURE_PERCENT);
}

/** Writes the machine-readable result (the --json output). */
export function emitJson(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj, null, 2)}\n`);
}
