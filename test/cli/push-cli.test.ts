// `ragtune push` as users run it (node bin/ragtune.mjs in a child process) against the fake write hub on
// 127.0.0.1, endpoint from $HF_ENDPOINT: the listing, --dry-run sending nothing, a push, and the exit code of each
// failure cause (2 refused folder, 3 no/bad token, 4 forbidden, 5 conflict, 6 unreachable). The children start
// together (1-2 s of CPU each).
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { freshDir, tinyModelCopy } from "../helpers/tiny-model.ts";
import { FakeWriteHub } from "../hub/fake-write-hub.ts";
import { BIN, runNode, type CliRun as Run } from "../helpers/run-cli.ts";

let hub: FakeWriteHub;
before(async () => {
  hub = await FakeWriteHub.start();
});
after(async () => {
  await hub.close();
});

/** `ragtune push ...args` with a clean token environment plus `env`. */
function push(args: string[], env: Record<string, string>): Promise<Run> {
  const base: NodeJS.ProcessEnv = { ...process.env, RAGTUNE_DEBUG: "", HF_HOME: freshDir("hfhome") };
  for (const k of ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_ENDPOINT"]) delete base[k];
  return runNode([BIN, "push", ...args], { env: { ...base, ...env }, inheritEnv: false });
}

test("ragtune push: listing, dry run, push, and one exit code per failure cause", async () => {
  const model = tinyModelCopy();
  writeFileSync(join(model, "trainer_state.json"), "{}");
  writeFileSync(join(model, "README.md"), "# tiny\n");
  const run = freshDir("run");
  mkdirSync(join(run, "final"));
  hub.addRepo("bob/model");
  hub.takenNames.add("alice/taken");
  const down = createServer();
  await new Promise<void>((ok) => down.listen(0, "127.0.0.1", () => ok()));
  const downUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
  await new Promise<void>((ok) => down.close(() => ok()));

  const ok = { HF_ENDPOINT: hub.endpoint, HF_TOKEN: "hf_write_token" };
  const [dry, pushed, noToken, badToken, forbidden, conflict, unreachable, runFolder] = await Promise.all([
    push([model, "--repo", "alice/dry", "--dry-run"], ok),
    push([model, "--repo", "alice/tiny", "--private", "--commit-message", "first model"], ok),
    push([model, "--repo", "alice/x"], { HF_ENDPOINT: hub.endpoint }),
    push([model, "--repo", "alice/x"], { HF_ENDPOINT: hub.endpoint, HF_TOKEN: "hf_wrong" }),
    push([model, "--repo", "bob/model"], ok),
    push([model, "--repo", "alice/taken"], ok),
    push([model, "--repo", "alice/x"], { HF_ENDPOINT: downUrl, HF_TOKEN: "hf_write_token" }),
    push([run, "--repo", "alice/x"], ok),
  ]);

  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stderr, /^11 files, .* from /m);
  assert.match(dry.stderr, /^ {2}model\.safetensors +4\.0 MB {2}weights$/m);
  assert.match(
    dry.stderr,
    /^not uploaded \(1, not model files\):\n {2}trainer_state\.json {2}trainer state$/m,
  );
  assert.match(
    dry.stderr,
    /dry run: would push to .*\/alice\/dry \(revision main\), token from HF_TOKEN; nothing was sent/,
  );
  assert.ok(!hub.repos.has("alice/dry"));

  assert.equal(pushed.code, 0, pushed.stderr);
  assert.match(
    pushed.stdout,
    /^pushed 11 files \(4\.9 MB\) to http:\/\/127\.0\.0\.1:\d+\/alice\/tiny \(private, commit [0-9a-f]{12}\)$/m,
  );
  assert.match(pushed.stderr, /created private repo .*\nuploaded model\.safetensors \(4\.0 MB, LFS, \d+s\)/s);
  const repo = hub.repos.get("alice/tiny");
  assert.equal(repo?.commits[repo.refs.main ?? ""]?.title, "first model");
  assert.ok(!hub.files("alice/tiny").has("trainer_state.json"));

  assert.equal(noToken.code, 3, noToken.stderr);
  assert.match(noToken.stderr, /ragtune push: No Hugging Face token found \(looked at \$HF_TOKEN/);
  assert.equal(badToken.code, 3, badToken.stderr);
  assert.match(badToken.stderr, /rejected the token from HF_TOKEN/);
  assert.ok(!badToken.stderr.includes("hf_wrong"));
  assert.equal(forbidden.code, 4, forbidden.stderr);
  assert.match(forbidden.stderr, /has no write access to bob\/model/);
  assert.equal(conflict.code, 5, conflict.stderr);
  assert.match(conflict.stderr, /Conflict: the name alice\/taken is taken/);
  assert.equal(unreachable.code, 6, unreachable.stderr);
  assert.ok(unreachable.stderr.includes(`Cannot reach the hub at ${downUrl}`), unreachable.stderr);
  assert.equal(runFolder.code, 2, runFolder.stderr);
  assert.ok(runFolder.stderr.includes(`ragtune push ${join(run, "final")}`), runFolder.stderr);
});
