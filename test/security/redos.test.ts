// ReDoS from tokenizer.json (issue #16 item 2): a hostile Split / Replace regex is refused at load or stopped by
// the time budget, with the file and JSON path in the error; Hugging Face's own patterns load and tokenize exactly
// as the library tokenizes them without the guard.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Tokenizer } from "../../src/tokenize/lib.ts";
import {
  WELL_KNOWN_PATTERNS,
  exponentialBacktrackingReason,
  findRegexSites,
} from "../../src/tokenize/regex-guard.ts";
import { installRustBert } from "../../src/tokenize/rust_bert.ts";
import { type TokenizerJson } from "../../src/tokenize/hf_json.ts";
import { HfTokenizer } from "../../src/tokenize/tokenizer.ts";

const MINILM = fileURLToPath(
  new URL("../fixtures/tokenizers/all-MiniLM-L6-v2/tokenizer.json", import.meta.url),
);
const base = JSON.parse(readFileSync(MINILM, "utf8")) as TokenizerJson;

const EVIL = "a".repeat(40) + "b";
const TEXTS = [
  "Hello, world! It's   a test's  text: 12345 apples.",
  "  leading and trailing   \n\n spaces\r\n",
  "naïve café — déjà vu; 3.14 ≠ π",
  EVIL,
];

function withSplit(regex: string): TokenizerJson {
  const j = structuredClone(base);
  j.pre_tokenizer = { type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false };
  return j;
}

function withReplace(regex: string): TokenizerJson {
  const j = structuredClone(base);
  j.normalizer = {
    type: "Sequence",
    normalizers: [j.normalizer, { type: "Replace", pattern: { Regex: regex }, content: " " }],
  };
  return j;
}

/** What the library alone (no guard) makes of a tokenizer.json, with ragtune's Rust BERT rules installed. */
function libraryTokens(json: TokenizerJson, text: string): string[] {
  const tok = new Tokenizer({ decoder: null, post_processor: null, ...json }, {});
  installRustBert(tok);
  return tok.tokenize(text, { add_special_tokens: false });
}

describe("static check", () => {
  test("rejects repeated variable-width groups", () => {
    for (const p of ["(a+)+$", "(a|aa)+$", "(a?a?)+b", "(?:\\s*x)*y", "((ab)*c)+", "(a|b){2,}", "(?<n>a+)*"])
      assert.ok(exponentialBacktrackingReason(p), p);
  });
  test("accepts linear shapes and Hugging Face's patterns", () => {
    for (const p of [
      ...WELL_KNOWN_PATTERNS,
      "(?:ab)+",
      "[a[b]]+c",
      "\\(a+\\)+",
      "(?i:'s|'t)?x+",
      "a{1,3}",
      "[(a+)+]",
    ])
      assert.equal(exponentialBacktrackingReason(p), undefined, p);
  });
  test("finds regexes anywhere with their JSON path", () => {
    const sites = findRegexSites(withReplace("x+"));
    assert.deepEqual(sites, [{ path: "normalizer.normalizers[1].pattern.Regex", source: "x+" }]);
  });
});

describe("hostile tokenizer.json", () => {
  test("Split pre-tokenizer (a+)+$ is refused at load, naming file and path", () => {
    const t0 = Date.now();
    assert.throws(
      () => HfTokenizer.fromTokenizerJson(withSplit("(a+)+$"), {}, "/m/tokenizer.json"),
      /\/m\/tokenizer\.json: pre_tokenizer\.pattern\.Regex: refusing the regex "\(a\+\)\+\$"/,
    );
    assert.ok(Date.now() - t0 < 5000);
  });
  test("Replace normalizer (a|aa)+$ is refused at load", () => {
    assert.throws(
      () => HfTokenizer.fromTokenizerJson(withReplace("(a|aa)+$"), {}, "/m/tokenizer.json"),
      /normalizer\.normalizers\[1\]\.pattern\.Regex: refusing the regex/,
    );
  });
  test("a polynomial pattern that passes the static check is stopped by the time budget", () => {
    const saved = process.env.RAGTUNE_REGEX_TIMEOUT_MS;
    // Building the tokenizer runs under the same budget: 300 ms was exceeded by construction alone on a loaded
    // 2-core machine. The pattern is O(n^10) on this text, so no budget is long enough for it to finish.
    process.env.RAGTUNE_REGEX_TIMEOUT_MS = "1500";
    try {
      const tok = HfTokenizer.fromTokenizerJson(withSplit("a*a*a*a*a*a*a*a*a*a*$"), {}, "/m/tokenizer.json");
      const t0 = Date.now();
      assert.throws(
        () => tok.tokenize("a".repeat(300) + "b"),
        /ran longer than 1500 ms, stopped: a regex of this tokenizer\.json \(pre_tokenizer\.pattern\.Regex/,
      );
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
      // The tokenizer stays usable for ordinary text.
      assert.deepEqual(tok.tokenize("hello"), ["hello"]);
    } finally {
      if (saved === undefined) delete process.env.RAGTUNE_REGEX_TIMEOUT_MS;
      else process.env.RAGTUNE_REGEX_TIMEOUT_MS = saved;
    }
  });
  test("a hostile regex run over the added tokens at construction is stopped too", () => {
    const saved = process.env.RAGTUNE_REGEX_TIMEOUT_MS;
    process.env.RAGTUNE_REGEX_TIMEOUT_MS = "300";
    try {
      const j = withReplace("a*a*a*a*a*a*a*a*a*a*$");
      j.added_tokens = [
        ...(j.added_tokens ?? []),
        {
          id: 30522,
          content: "a".repeat(300) + "b",
          single_word: false,
          lstrip: false,
          rstrip: false,
          normalized: true,
          special: false,
        },
      ];
      assert.throws(
        () => HfTokenizer.fromTokenizerJson(j, {}, "/m/tokenizer.json"),
        /building the tokenizer ran longer than 300 ms/,
      );
    } finally {
      if (saved === undefined) delete process.env.RAGTUNE_REGEX_TIMEOUT_MS;
      else process.env.RAGTUNE_REGEX_TIMEOUT_MS = saved;
    }
  });
  test("a bad RAGTUNE_REGEX_TIMEOUT_MS is an error, not a silent default", () => {
    const saved = process.env.RAGTUNE_REGEX_TIMEOUT_MS;
    process.env.RAGTUNE_REGEX_TIMEOUT_MS = "soon";
    try {
      assert.throws(
        () => HfTokenizer.fromTokenizerJson(withSplit("x+"), {}),
        /RAGTUNE_REGEX_TIMEOUT_MS must be a positive integer/,
      );
    } finally {
      if (saved === undefined) delete process.env.RAGTUNE_REGEX_TIMEOUT_MS;
      else process.env.RAGTUNE_REGEX_TIMEOUT_MS = saved;
    }
  });
});

describe("Hugging Face's own patterns tokenize as without the guard", () => {
  const cases: [string, TokenizerJson][] = [
    ["BERT (no regex)", base],
    ...[...WELL_KNOWN_PATTERNS].map((p): [string, TokenizerJson] => [
      `Split ${p.slice(0, 20)}…`,
      withSplit(p),
    ]),
    ["XLM-R Replace ' {2,}'", withReplace(" {2,}")],
    ["budgeted custom Split", withSplit("\\p{L}+|\\p{N}+|[^\\s\\p{L}\\p{N}]+")],
    ["budgeted custom Replace", withReplace("[0-9]+")],
  ];
  for (const [name, json] of cases) {
    test(name, () => {
      const tok = HfTokenizer.fromTokenizerJson(json, {}, "/m/tokenizer.json");
      for (const text of TEXTS) assert.deepEqual(tok.tokenize(text), libraryTokens(json, text), text);
    });
  }
});
