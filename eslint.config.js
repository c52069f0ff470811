// Lint: typescript-eslint's recommended rules plus the import-direction rule of the architecture
// (cli → train → eval → models → nn → engine; losses see only the engine; distributed sits between train and the
// engine; nothing imports cli).
import tseslint from "typescript-eslint";

const layer = (dir, forbidden) => ({
  files: [`src/${dir}/**/*.ts`],
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: forbidden.map((f) => ({
          group: [`**/${f}/*`, `../${f}/*`],
          message: `src/${dir} must not import src/${f}`,
        })),
      },
    ],
  },
});

export default tseslint.config(
  { ignores: ["node_modules/", "build/", "dist/", ".gpu/"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
  layer("engine", ["nn", "models", "tokenize", "hub", "data", "losses", "eval", "train", "export", "cli"]),
  layer("nn", ["models", "tokenize", "hub", "data", "losses", "eval", "train", "export", "cli"]),
  layer("losses", ["nn", "models", "tokenize", "hub", "data", "eval", "train", "export", "cli"]),
  layer("tokenize", ["engine", "nn", "models", "losses", "eval", "train", "export", "cli"]),
  layer("hub", ["engine", "nn", "models", "losses", "eval", "train", "export", "cli"]),
  layer("data", ["engine", "nn", "models", "losses", "eval", "train", "export", "cli"]),
  layer("models", ["losses", "data", "eval", "train", "cli"]),
  layer("eval", ["losses", "train", "cli"]),
  layer("distributed", [
    "nn",
    "models",
    "tokenize",
    "hub",
    "data",
    "losses",
    "eval",
    "train",
    "export",
    "cli",
  ]),
  layer("train", ["cli"]),
  layer("export", ["train", "cli"]),
);
