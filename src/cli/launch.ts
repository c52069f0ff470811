// `ragtune launch`: runs a ragtune command on N worker processes of this machine with the torchrun variables,
// the single-node form of `torchrun --nproc-per-node N --no-python ragtune …`.
import { fileURLToPath } from "node:url";
import { launchWorkers } from "../distributed/launcher.ts";
import { numberOption, UsageError, type Command } from "./args.ts";

const bin = fileURLToPath(new URL("../../bin/ragtune.mjs", import.meta.url));

export const launchCommand: Command = {
  name: "launch",
  summary: "run a ragtune command as N data-parallel worker processes on this machine (like torchrun)",
  usage: "ragtune launch --nproc-per-node N [--master-port P] -- <command> [options]",
  options: {
    "nproc-per-node": { type: "string", arg: "N", help: "worker processes to start (one per GPU on CUDA)" },
    "master-addr": {
      type: "string",
      arg: "HOST",
      help: "address of rank 0's rendezvous store",
      default: "127.0.0.1",
    },
    "master-port": { type: "string", arg: "PORT", help: "port of the rendezvous store", doc: "a free port" },
    "threads-per-proc": {
      type: "string",
      arg: "N",
      help: "libtorch CPU threads per worker (RAGTUNE_NUM_THREADS wins when set)",
      doc: "cores / N",
    },
  },
  notes:
    "Each worker gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT, as torchrun\n" +
    "sets them; output lines are prefixed with [rank i]. When one worker fails the others are stopped and the\n" +
    "launcher exits with its code, showing the end of its error output. Collective timeout: RAGTUNE_DIST_TIMEOUT\n" +
    "(seconds, default 1800 as in torch.distributed).\n" +
    "Several machines: start the same command on each with torchrun (or Slurm, or any launcher that sets the\n" +
    "variables above), e.g. on every node:\n" +
    "  torchrun --nnodes 2 --node-rank $NODE --nproc-per-node 4 --master-addr HOST --master-port 29500 \\\n" +
    "    --no-python ragtune train …\n" +
    "(set GLOO_SOCKET_IFNAME to the interface the nodes reach each other on if Gloo picks the wrong one).",
  async run(values, positionals) {
    if (values["nproc-per-node"] === undefined) throw new UsageError("missing --nproc-per-node");
    const nproc = numberOption(values, "nproc-per-node", 1, { integer: true, min: 1, max: 1024 });
    const masterPort =
      values["master-port"] === undefined
        ? undefined
        : numberOption(values, "master-port", 0, { integer: true, min: 1, max: 65535 });
    const threadsPerProc =
      values["threads-per-proc"] === undefined
        ? undefined
        : numberOption(values, "threads-per-proc", 1, { integer: true, min: 1 });
    if (positionals.length === 0)
      throw new UsageError(
        "missing the command to run after --, e.g. ragtune launch --nproc-per-node 2 -- train …",
      );
    if (positionals[0] === "launch") throw new UsageError("launch cannot launch itself");
    const r = await launchWorkers({
      nproc,
      command: [process.execPath, bin, ...positionals],
      masterAddr: String(values["master-addr"]),
      masterPort,
      threadsPerProc,
    });
    process.exitCode = r.exitCode;
  },
};
