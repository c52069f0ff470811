// Regular expressions from an untrusted tokenizer.json cannot hang the process (ReDoS).
//
// A tokenizer.json may carry its own regexes: `{"Regex": "..."}` patterns of Split / Replace pre-tokenizers,
// Replace normalizers and Replace decoders. @huggingface/tokenizers compiles them with V8's backtracking engine,
// where a pattern such as `(a+)+$` or `(a|aa)+$` takes exponential time on "a"×40 + "b" (the HF Rust library uses
// Oniguruma, which backtracks too). V8's linear-time engine cannot run `u`-flag patterns in Node 20, so two
// package-free defences instead:
//   1. at load, a static check rejects the shapes that backtrack exponentially: a group repeated by `*`, `+` or
//      `{n,m}` (m > 1) whose body has a variable width (an inner quantifier or an alternation): `(a+)+`, `(a|aa)+`,
//      `(a?a?)+`, `(?:\s*x)*`. No pattern shipped with a well-known Hugging Face tokenizer has that shape;
//   2. every pattern that is not one of those well-known patterns (exact text, listed below) runs under a time
//      budget per call (RAGTUNE_REGEX_TIMEOUT_MS, default 2000 ms per text): the library call runs inside
//      `vm.Script#runInContext({ timeout })`, whose watchdog interrupts a running regex. A budget overrun is an
//      error naming the file and the JSON path of the patterns, never a hang. (Polynomial shapes such as
//      `\s*\s*\s*$` pass the static check and are caught here.)
// The budget costs ~0.2 ms per call (a watchdog thread), so well-known patterns skip it.
import vm from "node:vm";

import type { LibTokenizer } from "./lib.ts";

/** Where a tokenizer.json regex is and what it says. */
export interface RegexSite {
  /** JSON path inside tokenizer.json, e.g. `pre_tokenizer.pretokenizers[0].pattern.Regex`. */
  path: string;
  source: string;
}

/** A tokenizer.json regex that is rejected at load or overran its time budget; names the file and JSON path. */
export class TokenizerRegexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenizerRegexError";
  }
}

/**
 * Patterns shipped by widely used Hugging Face tokenizers, as they appear in their tokenizer.json. They are
 * linear-time in practice (no repeated variable-width group, one lookahead at the end of a branch), so they run
 * without the budget's per-call cost. BERT, ModernBERT (ByteLevel pre-tokenizer: the library's own pattern) and
 * plain WordPiece/BPE tokenizers carry no tokenizer.json regex at all.
 */
export const WELL_KNOWN_PATTERNS: ReadonlySet<string> = new Set([
  // GPT-2 / RoBERTa-style Split (tokenizers' ByteLevel regex written out).
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
  // cl100k / Llama 3.
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  // Qwen2.
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  // XLM-RoBERTa / SentencePiece conversions: collapse runs of spaces (Replace normalizer).
  " {2,}",
]);

/** The budget per library call: RAGTUNE_REGEX_TIMEOUT_MS (a positive integer), else 2000 ms. */
export function regexBudgetMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.RAGTUNE_REGEX_TIMEOUT_MS;
  if (raw === undefined || raw === "") return 2000;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`RAGTUNE_REGEX_TIMEOUT_MS must be a positive integer (milliseconds), got "${raw}"`);
  return n;
}

/** Every `{"Regex": string}` of a tokenizer.json, with its JSON path (depth-first, document order). */
export function findRegexSites(json: unknown): RegexSite[] {
  const out: RegexSite[] = [];
  const walk = (v: unknown, path: string, depth: number): void => {
    // Real tokenizer.json nest a few levels; the bound keeps a hostile 100k-deep file from overflowing the stack.
    if (depth > 64 || v === null || typeof v !== "object") return;
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`, depth + 1));
      return;
    }
    for (const [key, x] of Object.entries(v as Record<string, unknown>)) {
      // The vocabulary and merges are big and hold no patterns.
      if (path === "model" && (key === "vocab" || key === "merges")) continue;
      const at = path === "" ? key : `${path}.${key}`;
      if (key === "Regex" && typeof x === "string") out.push({ path: at, source: x });
      else walk(x, at, depth + 1);
    }
  };
  walk(json, "", 0);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Static check

interface Shape {
  /** The body can match strings of different lengths (an inner quantifier with min ≠ max, or an alternation). */
  variable: boolean;
}

/**
 * Why `source` can backtrack exponentially, or undefined. Parses the Oniguruma syntax of tokenizer.json (escapes,
 * nested character classes, groups incl. `(?:` `(?i:` `(?<name>` and lookarounds, quantifiers `* + ? {n} {n,}
 * {n,m}` with lazy/possessive suffixes) and rejects a repeated group (max > 1) with a variable-width body.
 */
export function exponentialBacktrackingReason(source: string): string | undefined {
  let i = 0;
  let reason: string | undefined;

  // Reads a quantifier at i, if any: its bounds, after which i points past it (and its `?` / `+` suffix).
  const quantifier = (): { min: number; max: number; text: string } | undefined => {
    const start = i;
    const c = source[i];
    let q: { min: number; max: number } | undefined;
    if (c === "*") q = { min: 0, max: Infinity };
    else if (c === "+") q = { min: 1, max: Infinity };
    else if (c === "?") q = { min: 0, max: 1 };
    else if (c === "{") {
      const m = /^\{(\d*)(,(\d*))?\}/.exec(source.slice(i));
      if (m && (m[1] !== "" || (m[3] ?? "") !== "")) {
        const min = m[1] === "" ? 0 : Number(m[1]);
        const max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
        i += m[0].length - 1;
        q = { min, max };
      }
    }
    if (q === undefined) return undefined;
    i++;
    if (source[i] === "?" || source[i] === "+") i++;
    return { ...q, text: source.slice(start, i) };
  };

  // A character class starting at i ("["); Oniguruma nests classes ("[a[b]]") and allows "]" first.
  const skipClass = (): void => {
    let depth = 0;
    for (; i < source.length; i++) {
      const c = source[i];
      if (c === "\\") i++;
      else if (c === "[") {
        depth++;
        if (source[i + 1] === "^") i++;
        if (source[i + 1] === "]") i++;
      } else if (c === "]" && --depth === 0) {
        i++;
        return;
      }
    }
  };

  // Parses an alternation up to ")" or the end; returns its shape.
  const alternation = (depth: number): Shape => {
    let variable = false;
    let branches = 1;
    while (i < source.length && source[i] !== ")") {
      if (source[i] === "|") {
        branches++;
        i++;
        continue;
      }
      const atomStart = i;
      let atom: Shape = { variable: false };
      const c = source[i];
      if (c === "(") {
        i++;
        const prefix = /^\?(<[=!]|[:=!>]|<[A-Za-z_][A-Za-z0-9_]*>|'[A-Za-z_][A-Za-z0-9_]*'|[imx-]+:)?/.exec(
          source.slice(i),
        );
        if (prefix && prefix[0] !== "?") i += prefix[0].length;
        atom = depth > 200 ? { variable: true } : alternation(depth + 1);
        if (source[i] === ")") i++;
        // Lookarounds match no characters; their bodies still count for a repeat around them.
      } else if (c === "[") {
        skipClass();
      } else if (c === "\\") {
        i += 2;
      } else {
        i++;
      }
      const q = quantifier();
      if (q !== undefined) {
        if (q.max > 1 && atom.variable && reason === undefined) {
          const body = source.slice(atomStart, i - q.text.length);
          reason =
            `the group ${body} is repeated by "${q.text}" and can itself match strings of different lengths ` +
            `(nested quantifier or alternation), which backtracks exponentially; rewrite it without the nested ` +
            `repetition (a character class instead of an alternation, one quantifier instead of two)`;
        }
        if (q.min !== q.max) variable = true;
      }
      if (atom.variable) variable = true;
    }
    return { variable: variable || branches > 1 };
  };

  while (i < source.length) {
    alternation(0);
    if (source[i] === ")") i++; // an unbalanced ")" is a syntax error the library reports; keep scanning
  }
  return reason;
}

/**
 * Checks every regex of a tokenizer.json: throws a TokenizerRegexError (file + JSON path) for one that can
 * backtrack exponentially; returns the sites that are not well-known patterns (those run under the budget).
 */
export function checkTokenizerRegexes(json: unknown, source: string): RegexSite[] {
  const sites = findRegexSites(json);
  for (const site of sites) {
    if (WELL_KNOWN_PATTERNS.has(site.source)) continue;
    const why = exponentialBacktrackingReason(site.source);
    if (why !== undefined)
      throw new TokenizerRegexError(
        `${source}: ${site.path}: refusing the regex ${JSON.stringify(site.source)}: ${why}`,
      );
  }
  return sites.filter((s) => !WELL_KNOWN_PATTERNS.has(s.source));
}

// ---------------------------------------------------------------------------------------------------------
// Time budget

const budgetContext = vm.createContext({ run: undefined as (() => unknown) | undefined });
const runScript = new vm.Script("run()");
let insideBudget = false;

/**
 * Runs `fn` with a deadline of `budgetMs`: a synchronous overrun (a regex backtracking) is interrupted and
 * becomes `onTimeout()`'s error. Reentrant: a call made inside a budgeted call shares the outer deadline.
 */
export function withTimeBudget<T>(fn: () => T, budgetMs: number, onTimeout: () => Error): T {
  if (insideBudget) return fn();
  insideBudget = true;
  budgetContext.run = fn;
  try {
    return runScript.runInContext(budgetContext, { timeout: budgetMs }) as T;
  } catch (e) {
    if ((e as { code?: unknown }).code === "ERR_SCRIPT_EXECUTION_TIMEOUT") throw onTimeout();
    throw e;
  } finally {
    budgetContext.run = undefined;
    insideBudget = false;
  }
}

/** The error of a budget overrun: which file, which patterns, which budget and how to raise it. */
export function budgetError(source: string, sites: readonly RegexSite[], budgetMs: number, what: string) {
  const where = sites.map((s) => `${s.path} ${JSON.stringify(s.source)}`).join(", ");
  return new TokenizerRegexError(
    `${source}: ${what} ran longer than ${budgetMs} ms, stopped: a regex of this tokenizer.json (${where}) ` +
      `backtracks catastrophically on this text (ReDoS). Fix the pattern, or raise RAGTUNE_REGEX_TIMEOUT_MS ` +
      `if the text is simply very long.`,
  );
}

/**
 * Makes the library calls that run tokenizer.json regexes (encode, tokenize, decode) run under the budget. The
 * sites are the untrusted ones from checkTokenizerRegexes; with none, the tokenizer is left as it is.
 */
export function budgetLibTokenizer(
  tok: LibTokenizer,
  sites: readonly RegexSite[],
  source: string,
  budgetMs: number,
): void {
  if (sites.length === 0) return;
  const wrap =
    <A extends unknown[], R>(name: string, f: (...args: A) => R) =>
    (...args: A): R =>
      withTimeBudget(
        () => f.apply(tok, args),
        budgetMs,
        () => budgetError(source, sites, budgetMs, `${name} of one text`),
      );
  tok.encode = wrap("encode", tok.encode);
  tok.tokenize = wrap("tokenize", tok.tokenize);
  tok.decode = wrap("decode", tok.decode);
}
