// Command-line parsing shared by the ragtune commands: node's parseArgs with typed option tables, kebab-case
// flags, `--help` text generated from the same table, and errors that name the flag.
import { parseArgs } from "node:util";

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  default?: string | boolean;
  /** Shown in --help. */
  help: string;
  /** The default as shown in --help when the command applies it itself (not filled in by the parser). */
  doc?: string;
  /** Placeholder shown in --help, e.g. FILE. */
  arg?: string;
}

export type OptionTable = Record<string, OptionSpec>;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: OptionTable;
  /** Extra help text after the options. */
  notes?: string;
  run(
    values: Record<string, string | boolean | (string | boolean)[] | undefined>,
    positionals: string[],
  ): Promise<void>;
}

export function helpText(cmd: Command): string {
  const lines = [`ragtune ${cmd.name} — ${cmd.summary}`, "", `usage: ${cmd.usage}`, "", "options:"];
  for (const [name, spec] of Object.entries(cmd.options)) {
    const flag = `--${name}${spec.type === "string" ? ` ${spec.arg ?? "VALUE"}` : ""}`;
    const def =
      spec.default !== undefined && spec.default !== false ? ` (default: ${String(spec.default)})` : "";
    lines.push(`  ${flag.padEnd(34)} ${spec.help}${def}`);
  }
  lines.push(`  ${"--help".padEnd(34)} show this help`);
  if (cmd.notes) lines.push("", cmd.notes);
  return lines.join("\n");
}

export function parseCommandArgs(cmd: Command, argv: string[]) {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean; default?: string | boolean }
  > = {
    help: { type: "boolean" },
  };
  for (const [name, spec] of Object.entries(cmd.options)) {
    options[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
    };
    if (spec.default !== undefined) options[name].default = spec.default;
  }
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(
      `${(e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, "")}\n\n${helpText(cmd)}`,
    );
  }
}

/** A required string option, or a UsageError naming the flag. */
export function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== "string" || v === "") throw new UsageError(`missing --${name}`);
  return v;
}

/** A numeric option with range checks; errors name the flag and the bad value. */
export function numberOption(
  values: Record<string, unknown>,
  name: string,
  fallback: number,
  check: { integer?: boolean; min?: number; max?: number } = {},
): number {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  const bad =
    typeof v !== "string" ||
    v.trim() === "" ||
    !Number.isFinite(n) ||
    (check.integer && !Number.isInteger(n)) ||
    (check.min !== undefined && n < check.min) ||
    (check.max !== undefined && n > check.max);
  if (bad) {
    const kind = check.integer ? "an integer" : "a number";
    const bounds =
      check.min !== undefined && check.max !== undefined
        ? ` between ${check.min} and ${check.max}`
        : check.min !== undefined
          ? ` ≥ ${check.min}`
          : check.max !== undefined
            ? ` ≤ ${check.max}`
            : "";
    throw new UsageError(`--${name} must be ${kind}${bounds}, got "${String(v)}"`);
  }
  return n;
}

/** An on|off option (e.g. --packing off): true for on, false for off, `fallback` when absent. */
export function onOffOption(values: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const v = values[name];
  if (v === undefined) return fallback;
  if (v === "on") return true;
  if (v === "off") return false;
  throw new UsageError(`--${name} must be on or off, got "${String(v)}"`);
}

/** A comma-separated list of integers, e.g. --dims 768,512,256. */
export function intListOption(values: Record<string, unknown>, name: string, fallback: number[]): number[] {
  const v = values[name];
  if (v === undefined) return fallback;
  const parts = String(v)
    .split(",")
    .map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.some((p) => p === "") || nums.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new UsageError(`--${name} must be a comma-separated list of positive integers, got "${String(v)}"`);
  }
  return nums;
}
