// Runs the real `ragtune` binary in a child process for the CLI tests: one copy of the spawn/collect code that
// each CLI test file used to carry.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";

export const BIN = fileURLToPath(new URL("../../bin/ragtune.mjs", import.meta.url));
const ADDON = fileURLToPath(new URL("../../build/ragtune.node", import.meta.url));

/**
 * A `--import` module that loads the addon first and sets one intra-op thread (the addon takes every core when it
 * loads; tiny models only spin with more on a busy machine). The CLI's own load then finds the addon loaded.
 */
const ONE_THREAD_PRELOAD =
  "data:text/javascript," +
  encodeURIComponent(
    `import { createRequire } from "node:module";` +
      `createRequire(${JSON.stringify(pathToFileURL(BIN).href)})(${JSON.stringify(ADDON)}).setNumThreads(1);`,
  );

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Written to the child's stdin (which is closed either way). */
  input?: string;
  /** Extra environment; RAGTUNE_DEBUG is "" (no stack traces) unless set here. */
  env?: NodeJS.ProcessEnv;
  /**
   * One libtorch thread in the child: "env" sets RAGTUNE_NUM_THREADS=1, "preload" sets it through the addon
   * before the CLI starts (as a caller that already loaded the addon would), "inherit" leaves it alone.
   */
  threads?: "env" | "preload" | "inherit";
  /** Called with the child once spawned (to kill it mid-run, say). */
  onStart?: (child: ChildProcess) => void;
}

/** Runs `ragtune ...args` and resolves with its exit code or signal and its whole stdout and stderr. */
export function ragtune(args: string[], o: CliOptions = {}): Promise<CliRun> {
  const threads = o.threads ?? "env";
  const nodeArgs = threads === "preload" ? ["--import", ONE_THREAD_PRELOAD] : [];
  const env: NodeJS.ProcessEnv = { RAGTUNE_DEBUG: "" };
  if (threads === "env") env.RAGTUNE_NUM_THREADS = "1";
  return runNode([...nodeArgs, BIN, ...args], { ...o, env: { ...env, ...o.env } });
}

/**
 * Runs `node ...args` (a script, a snippet) the same way: `env` is added to this process's environment, or with
 * `inheritEnv: false` is the child's whole environment (to leave a variable out).
 */
export function runNode(
  args: string[],
  o: Omit<CliOptions, "threads"> & { cwd?: string; inheritEnv?: boolean } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: o.inheritEnv === false ? { ...o.env } : { ...process.env, ...o.env },
      stdio: ["pipe", "pipe", "pipe"],
      ...(o.cwd ? { cwd: o.cwd } : {}),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.on("error", () => {}); // a child that exits before reading its stdin
    child.stdin.end(o.input ?? "");
    o.onStart?.(child);
  });
}
