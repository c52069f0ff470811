// ragtune's command line: one table of commands, each in its own file.
import { helpText, parseCommandArgs, UsageError, type Command } from "./args.ts";
import { prepareCommand } from "./prepare.ts";
import { createModelCommand, encodeCommand } from "./model-commands.ts";
import { evalCommand } from "./eval.ts";
import { compareCommand } from "./compare.ts";
import { trainCommand } from "./train.ts";
import { exportOnnxCommand } from "./export.ts";
import { exportTfjsCommand } from "./export-tfjs.ts";
import { mineNegativesCommand } from "./mine-negatives.ts";
import { reportCommand } from "./report.ts";
import { launchCommand } from "./launch.ts";
import { pushCommand } from "./push.ts";

const COMMANDS: Command[] = [
  prepareCommand,
  evalCommand,
  trainCommand,
  compareCommand,
  encodeCommand,
  createModelCommand,
  exportOnnxCommand,
  exportTfjsCommand,
  mineNegativesCommand,
  reportCommand,
  launchCommand,
  pushCommand,
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "ragtune — fine-tune embedding models for retrieval (sentence-transformers compatible), on libtorch",
    "",
    "usage: ragtune <command> [options]   (ragtune <command> --help for details)",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join("\n");
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage() + "\n");
    return;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`ragtune: unknown command "${name}"\n\n${usage()}\n`);
    process.exitCode = 2;
    return;
  }
  try {
    const { values, positionals } = parseCommandArgs(cmd, rest);
    if (values.help) {
      process.stdout.write(helpText(cmd) + "\n");
      return;
    }
    await cmd.run(values, positionals);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`ragtune ${cmd.name}: ${e.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`ragtune ${cmd.name}: ${(e as Error).message}\n`);
      if (process.env.RAGTUNE_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
      process.exitCode = 1;
    }
  }
}
