#!/usr/bin/env node
// The `ragtune` command. From a source checkout it runs the TypeScript directly (through tsx); an installed
// package without src/ runs the compiled dist/.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const source = `${root}src/cli/main.ts`;
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  const { main } = await import(source);
  await main(process.argv.slice(2));
} else {
  const { main } = await import(`${root}dist/cli/main.js`);
  await main(process.argv.slice(2));
}
