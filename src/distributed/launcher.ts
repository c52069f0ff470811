// Starts N worker processes on this machine with the torchrun variables and supervises them like torchrun's
// elastic agent without restarts: output is prefixed with the rank, the first worker that fails stops all the
// others (SIGTERM, then SIGKILL after a grace period), and the launcher exits with the failing worker's code
// after showing the tail of its error output.
// ports torch/distributed/run.py (the single-node, max_restarts=0 behaviour and its environment)
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { availableParallelism } from "node:os";
import { createInterface } from "node:readline";
import type { Writable } from "node:stream";

export interface LaunchOptions {
  nproc: number;
  /** The program and its arguments, started once per rank. */
  command: readonly string[];
  masterAddr?: string;
  /** Default: a port the kernel reports free. */
  masterPort?: number;
  /** libtorch threads per worker (RAGTUNE_NUM_THREADS); default: the cores divided among the workers. */
  threadsPerProc?: number;
  /** Grace between SIGTERM and SIGKILL when stopping the other workers after a failure (default 10 s). */
  graceMs?: number;
  env?: NodeJS.ProcessEnv;
  stdout?: Writable;
  stderr?: Writable;
}

export interface LaunchResult {
  /** 0, or the failing worker's exit code (128 + signal number for a signal, as a shell reports it). */
  exitCode: number;
  failedRank: number | null;
}

const TAIL_LINES = 40;

/** A port the kernel reported free on `host` a moment ago. */
export function findFreePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

const SIGNALS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export async function launchWorkers(o: LaunchOptions): Promise<LaunchResult> {
  if (!Number.isInteger(o.nproc) || o.nproc < 1)
    throw new Error(`nproc must be a positive integer, got ${o.nproc}`);
  if (o.command.length === 0) throw new Error("no command to launch");
  const masterAddr = o.masterAddr ?? "127.0.0.1";
  const masterPort = o.masterPort ?? (await findFreePort(masterAddr));
  const threads = o.threadsPerProc ?? Math.max(1, Math.floor(availableParallelism() / o.nproc));
  const base = o.env ?? process.env;
  const out = o.stdout ?? process.stdout;
  const err = o.stderr ?? process.stderr;
  const graceMs = o.graceMs ?? 10_000;

  const children: ChildProcess[] = [];
  const tails: string[][] = [];
  let failure: { rank: number; code: number | null; signal: NodeJS.Signals | null } | null = null;
  const failed: { rank: number; code: number | null; signal: NodeJS.Signals | null }[] = [];
  let killTimer: NodeJS.Timeout | null = null;

  const stopOthers = (signal: NodeJS.Signals) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
    killTimer ??= setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    }, graceMs);
  };
  const onSignal = (s: NodeJS.Signals) => stopOthers(s);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const exits = Array.from({ length: o.nproc }, (_, rank) => {
    const env: NodeJS.ProcessEnv = {
      ...base,
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      WORLD_SIZE: String(o.nproc),
      LOCAL_WORLD_SIZE: String(o.nproc),
      GROUP_RANK: "0",
      MASTER_ADDR: masterAddr,
      MASTER_PORT: String(masterPort),
      RAGTUNE_NUM_THREADS: base.RAGTUNE_NUM_THREADS || String(threads),
    };
    const child = spawn(o.command[0]!, o.command.slice(1), { env, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    tails.push([]);
    const prefix = o.nproc > 1 ? `[rank ${rank}] ` : "";
    createInterface({ input: child.stdout! }).on("line", (l) => out.write(prefix + l + "\n"));
    createInterface({ input: child.stderr! }).on("line", (l) => {
      err.write(prefix + l + "\n");
      const t = tails[rank]!;
      t.push(l);
      if (t.length > TAIL_LINES) t.shift();
    });
    return new Promise<void>((resolve) => {
      child.on("error", (e) => {
        tails[rank]!.push(`cannot start ${o.command[0]}: ${e.message}`);
        failure ??= { rank, code: 127, signal: null };
        stopOthers("SIGTERM");
        resolve();
      });
      child.on("close", (code, signal) => {
        if (code !== 0 || signal !== null) {
          failed.push({ rank, code, signal });
          if (!failure) {
            failure = { rank, code, signal };
            stopOthers("SIGTERM");
          }
        }
        resolve();
      });
    });
  });
  await Promise.all(exits);
  if (killTimer) clearTimeout(killTimer);
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);

  // The rank to blame: a rank whose own error is only the loss of a peer (the binding's "another rank probably
  // exited") follows the one that really failed, but its exit can be seen first (the order in which the
  // children's pipes close is not the order of their failures), so the first failure that is not a peer loss wins.
  const peerLoss = (rank: number) => tails[rank]!.some((l) => l.includes("another rank probably exited"));
  const f =
    failed.find((x) => !peerLoss(x.rank)) ??
    (failure as { rank: number; code: number | null; signal: NodeJS.Signals | null } | null);
  if (!f) return { exitCode: 0, failedRank: null };
  const how = f.signal ? `signal ${f.signal}` : `exit code ${f.code}`;
  const tail = tails[f.rank]!;
  err.write(
    `ragtune launch: rank ${f.rank} of ${o.nproc} failed (${how}); the other ranks were stopped.\n` +
      (tail.length ? `rank ${f.rank}'s last error output:\n  ${tail.join("\n  ")}\n` : ""),
  );
  const exitCode = f.signal ? 128 + (SIGNALS[f.signal] ?? 0) : (f.code ?? 1) || 1;
  return { exitCode, failedRank: f.rank };
}
