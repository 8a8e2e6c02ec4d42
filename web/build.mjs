// Builds web/dist from web/src: one ES module per page, bundled with its npm dependencies and
// minified. web/dist is committed, so a cargo build needs no Node; run `npm ci && npm run
// build` here after changing a source. The pages' HTML and CSS (web/static) need no build and
// are embedded from where they are.
import { build } from "esbuild";
import { mkdirSync } from "node:fs";

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
