// A data-parallel process group over libtorch's c10d (native/distributed.cc): Gloo for CPU tensors, NCCL for
// CUDA tensors where the linked libtorch has it. The collectives block the JS thread until every rank has
// joined (or the timeout passes): data-parallel training has nothing else to do meanwhile, and blocking keeps
// the step order identical on every rank. Every failure — a peer that died, a timeout, ranks passing different
// shapes or calling different collectives — is a TorchError naming the rank; after one the group refuses
// further calls.
import { native, Tensor, TorchError, type Device } from "../engine/index.ts";
import type { GroupHandle, NativeAddon, NewProcessGroupOptions } from "../engine/native.ts";
import { isLoopback, readDistributedEnv, type DistributedEnv } from "./env.ts";

export type Backend = "gloo" | "nccl";
export type ReduceOp = "sum" | "avg";

/** torch.distributed's default collective timeout (30 min): long enough for rank 0 to evaluate and save. */
export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;
/**
 * Gradient bucket size. DistributedDataParallel uses 25 MiB, but over Gloo on a small CPU box buckets of a few MiB
 * were several times faster (the queued buckets overlap their copies with the transfers): compare with
 * `npm run bench:distributed -- --bucket-mb 4` and `-- --bucket-mb 25`.
 */
export const DEFAULT_BUCKET_BYTES = 4 * 1024 * 1024;

type C10d = Required<
  Pick<
    NativeAddon,
    | "newProcessGroup"
    | "pgAllReduce"
    | "pgBroadcast"
    | "pgAllGather"
    | "pgAllGatherWithGrad"
    | "pgBarrier"
    | "pgDestroy"
  >
>;

function c10d(backend: Backend): C10d {
  const info = native.distributedInfo();
  if (!native.newProcessGroup || !info[backend])
    throw new TorchError(
      `the ${backend} backend is not available in this build of the addon` +
        (info.missing ? `: ${info.missing}` : backend === "nccl" ? " (needs a CUDA libtorch with NCCL)" : ""),
      "ProcessGroup.init",
    );
  return native as unknown as C10d;
}

export interface ProcessGroupOptions extends DistributedEnv {
  /** Default: nccl for a CUDA device, else gloo. */
  backend?: Backend;
  /** Per collective and for the rendezvous; default 30 min (torch.distributed's default). */
  timeoutMs?: number;
}

/** The timeout from RAGTUNE_DIST_TIMEOUT (seconds), else the default. */
function timeoutFromEnv(env: NodeJS.ProcessEnv): number {
  const raw = env.RAGTUNE_DIST_TIMEOUT;
  if (raw === undefined || raw === "") return DEFAULT_TIMEOUT_MS;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0)
    throw new Error(`RAGTUNE_DIST_TIMEOUT must be a positive number of seconds, got "${raw}"`);
  return Math.round(s * 1000);
}

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;
  readonly localWorldSize: number;
  readonly backend: Backend;
  readonly timeoutMs: number;
  #handle: GroupHandle | null;
  #c10d: C10d;

  private constructor(o: Required<ProcessGroupOptions>, c: C10d, handle: GroupHandle) {
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.localRank = o.localRank;
    this.localWorldSize = o.localWorldSize;
    this.backend = o.backend;
    this.timeoutMs = o.timeoutMs;
    this.#c10d = c;
    this.#handle = handle;
  }

  /**
   * Joins the group: rank 0 hosts the rendezvous store at masterAddr:masterPort, every rank connects, and the
   * call returns once all worldSize ranks are there (or throws after timeoutMs).
   */
  static init(o: ProcessGroupOptions): ProcessGroup {
    const backend = o.backend ?? "gloo";
    const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const c = c10d(backend);
    const native_: NewProcessGroupOptions = {
      backend,
      masterAddr: o.masterAddr,
      masterPort: o.masterPort,
      rank: o.rank,
      worldSize: o.worldSize,
      timeoutMs,
    };
    // Gloo binds one interface for its pairs: GLOO_SOCKET_IFNAME as in PyTorch, loopback for one machine,
    // else the address the host name resolves to (c10d's default device).
    const iface = process.env.GLOO_SOCKET_IFNAME?.split(",")[0];
    if (iface) native_.interface = iface;
    else if (isLoopback(o.masterAddr)) native_.hostname = "127.0.0.1";
    const handle = c.newProcessGroup(native_);
    return new ProcessGroup({ ...o, backend, timeoutMs }, c, handle);
  }

  /**
   * The group described by the torchrun variables (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
   * MASTER_ADDR, MASTER_PORT), or null when they are absent (a single-process run). The timeout comes from
   * RAGTUNE_DIST_TIMEOUT (seconds) unless given.
   */
  static fromEnv(
    o: { backend?: Backend; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
  ): ProcessGroup | null {
    const env = o.env ?? process.env;
    const d = readDistributedEnv(env);
    if (!d) return null;
    return ProcessGroup.init({ ...d, backend: o.backend, timeoutMs: o.timeoutMs ?? timeoutFromEnv(env) });
  }

  /** The backend for tensors on `device`: NCCL for CUDA (as torch.distributed picks), Gloo otherwise. */
  static backendFor(device: Device): Backend {
    return device.startsWith("cuda") ? "nccl" : "gloo";
  }

  /** Rank 0: the one that logs, evaluates and writes. */
  get isMain(): boolean {
    return this.rank === 0;
  }

  get handle(): GroupHandle {
    if (!this.#handle) throw new TorchError("the process group was destroyed", "ProcessGroup");
    return this.#handle;
  }

  /** In place over ranks: the sum or the mean of each tensor. One collective per bucket of ≤ bucketBytes. */
  allReduce(tensors: readonly Tensor[], o: { op?: ReduceOp; bucketBytes?: number } = {}): void {
    this.#c10d.pgAllReduce(
      this.handle,
      tensors.map((t) => t.handle),
      (o.op ?? "sum") === "avg",
      o.bucketBytes ?? DEFAULT_BUCKET_BYTES,
      false,
    );
  }

  /**
   * Averages every parameter's .grad over ranks, in place (DistributedDataParallel's gradient hook, done once
   * after backward). Parameters without a gradient are skipped, so all ranks must have gradients for the same
   * parameters (a mismatch is an error, as in DDP without find_unused_parameters).
   */
  allReduceGradients(params: readonly Tensor[], bucketBytes = DEFAULT_BUCKET_BYTES): void {
    this.#c10d.pgAllReduce(
      this.handle,
      params.map((t) => t.handle),
      true,
      bucketBytes,
      true,
    );
  }

  /** In place: every rank ends with root's values (tensors must have the same shapes on every rank). */
  broadcast(tensors: readonly Tensor[], root = 0, bucketBytes = DEFAULT_BUCKET_BYTES): void {
    this.#c10d.pgBroadcast(
      this.handle,
      tensors.map((t) => t.handle),
      root,
      bucketBytes,
    );
  }

  /**
   * Copies root's parameters to every rank (DistributedDataParallel does this at construction), so ranks that
   * initialised new layers from different seeds still start identical.
   */
  broadcastParameters(params: readonly Tensor[], root = 0): void {
    this.broadcast(params, root);
  }

  /** Every rank's tensor, in rank order (same shape on every rank; no autograd). */
  allGather(t: Tensor): Tensor[] {
    return this.#c10d.pgAllGather(this.handle, t.handle).map((h) => new Tensor(h));
  }

  /**
   * Every rank's rows concatenated in rank order, (worldSize·rows, …), differentiable: the backward pass sums
   * the gradient of the gathered rows over ranks and hands each rank the slice of its own rows (a
   * reduce-scatter). With per-rank losses averaged by allReduceGradients, the parameters then get exactly the
   * gradient of the single-process loss over the global batch.
   * ports sentence_transformers util/distributed.py#all_gather_with_grad (torch.distributed.nn.all_gather)
   */
  allGatherWithGrad(t: Tensor): Tensor {
    return new Tensor(this.#c10d.pgAllGatherWithGrad(this.handle, t.handle));
  }

  /** The mean over ranks of each number (float64), e.g. the logged loss, as HF Trainer logs it. */
  meanOverRanks(values: readonly number[]): number[] {
    if (values.length === 0) return [];
    using t = new Tensor(native.fromBytes(Float64Array.from(values), "float64", [values.length]));
    this.allReduce([t], { op: "avg" });
    return Array.from(t.toArray() as Float64Array);
  }

  /** Every rank's numbers, in rank order (each rank must pass as many). */
  allGatherNumbers(values: readonly number[]): number[][] {
    using t = new Tensor(native.fromBytes(Float64Array.from(values), "float64", [values.length]));
    return this.allGather(t).map((p) => {
      const v = Array.from(p.toArray() as Float64Array);
      p.dispose();
      return v;
    });
  }

  /**
   * Throws on every rank when the ranks disagree on `values` (e.g. the data set size, the seed, the global batch
   * size): a misconfigured worker fails at the start, naming what differs, instead of training out of step.
   */
  assertSameOnRanks(what: string, values: readonly number[]): void {
    const all = this.allGatherNumbers(values);
    const bad = all.findIndex((v) => v.some((x, i) => !Object.is(x, all[0]![i])));
    if (bad >= 0)
      throw new TorchError(
        `ranks disagree on ${what}: rank 0 has [${all[0]!.join(", ")}], rank ${bad} has [${all[bad]!.join(", ")}]`,
        "ProcessGroup.assertSameOnRanks",
      );
  }

  /** True on every rank when `flag` is true on any rank: stops (e.g. on a NaN loss) stay in step. */
  anyRank(flag: boolean): boolean {
    return this.meanOverRanks([flag ? 1 : 0])[0]! > 0;
  }

  /** Waits until every rank has called barrier() (or throws after the timeout). */
  barrier(): void {
    this.#c10d.pgBarrier(this.handle);
  }

  /** Leaves the group now (closes the connections and, on rank 0, the store). Idempotent. */
  destroy(): void {
    if (!this.#handle) return;
    this.#c10d.pgDestroy(this.#handle);
    this.#handle = null;
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}
