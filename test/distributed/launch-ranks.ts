// Starts the ranks of a test/distributed scenario as separate processes on 127.0.0.1 with the torchrun
// variables and a hard deadline: a rank still running at the deadline is SIGKILLed and reported as hung, so a
// broken collective fails the test instead of stalling the suite.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";

import { launchWorkers } from "../../src/distributed/launcher.ts";

export interface RankResult {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The JSON line the worker printed, if any. */
  json: Record<string, unknown> | null;
  stderr: string;
  ms: number;
  hung: boolean;
}

/** A port that was free a moment ago (the kernel's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const worker = fileURLToPath(new URL("./worker.ts", import.meta.url));

export async function launchRanks(
  scenario: string,
  o: { nproc?: number; worldSize?: number; timeoutS?: number; deadlineMs?: number } = {},
): Promise<RankResult[]> {
  const nproc = o.nproc ?? 2;
  const port = await freePort();
  const deadline = o.deadlineMs ?? 25_000;
  return Promise.all(
    Array.from({ length: nproc }, (_, rank) => {
      const env = {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        WORLD_SIZE: String(o.worldSize ?? nproc),
        LOCAL_WORLD_SIZE: String(o.worldSize ?? nproc),
        MASTER_ADDR: "127.0.0.1",
        MASTER_PORT: String(port),
        RAGTUNE_DIST_TIMEOUT: String(o.timeoutS ?? 10),
        RAGTUNE_NUM_THREADS: "1",
      };
      const start = Date.now();
      const child = spawn(process.execPath, ["--import", "tsx", worker, scenario], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      let hung = false;
      const timer = setTimeout(() => {
        hung = true;
        child.kill("SIGKILL");
      }, deadline);
      return new Promise<RankResult>((resolve) => {
        child.on("exit", (code, signal) => {
          clearTimeout(timer);
          const line = stdout.trim().split("\n").pop() ?? "";
          let json: Record<string, unknown> | null = null;
          try {
            json = line.startsWith("{") ? (JSON.parse(line) as Record<string, unknown>) : null;
          } catch {
            json = null;
          }
          resolve({ rank, code, signal, json, stderr, ms: Date.now() - start, hung });
        });
      });
    }),
  );
}

/** A writable that keeps what is written to it (a launched worker's stdout or stderr). */
export class Collect extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const trainWorker = fileURLToPath(new URL("./train-worker.ts", import.meta.url));

/**
 * Runs train-worker.ts `scenario` on 2 ranks through `ragtune launch`'s launcher (Gloo, one thread each); the
 * workers write into `out` and their results into `results`. Resolves with the launch result and their stderr.
 */
export async function launchTrainRanks(scenario: string, out: string, results: string) {
  const err = new Collect();
  const r = await launchWorkers({
    nproc: 2,
    command: [process.execPath, "--import", "tsx", trainWorker, scenario, out, results],
    env: { ...process.env, RAGTUNE_DIST_TIMEOUT: "30" },
    threadsPerProc: 1,
    graceMs: 2_000,
    stdout: new Collect(),
    stderr: err,
  });
  return { ...r, stderr: err.text };
}
