// Builds web/dist from web/src and web/static: one ES module per page (bundled with its npm
// dependencies, minified) and the static HTML and CSS copied. web/dist is committed, so a
// cargo build needs no Node; run `npm ci && npm run build` here after changing a source.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";

const here = new URL(".", import.meta.url).pathname;
mkdirSync(`${here}dist`, { recursive: true });
await build({
  entryPoints: [`${here}src/enroll.js`, `${here}src/console.js`],
  bundle: true,
  format: "esm",
  minify: true,
  legalComments: "none",
  target: ["chrome110", "firefox115", "safari16"],
  outdir: `${here}dist`,
  logLevel: "warning",
});
for (const name of readdirSync(`${here}static`)) {
  copyFileSync(`${here}static/${name}`, `${here}dist/${name}`);
}
