// Validates KEDA resources in YAML files with the CRD schemas of @kubernetes-models/keda.
// Usage: node validate-keda.mjs <node_modules dir> <file.yaml>...
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
const load = (p) => import(pathToFileURL(path.resolve(modules, p)).href);
const yaml = (await load("js-yaml/index.js")).default;
const keda = await load("@kubernetes-models/keda/keda.sh/v1alpha1/index.js");

let failed = false;
for (const file of files) {
  for (const doc of yaml.loadAll(fs.readFileSync(file, "utf8"))) {
    if (!doc) continue;
    const Model = keda[doc.kind];
    if (!Model) {
      console.error(`${file}: unknown KEDA kind ${doc.kind}`);
      failed = true;
      continue;
    }
    try {
      new Model(doc).validate();
      console.log(`${file}: ${doc.kind}/${doc.metadata.name} is valid`);
    } catch (e) {
      console.error(`${file}: ${doc.kind}/${doc.metadata.name}: ${e.message}`);
      failed = true;
    }
  }
}
process.exit(failed ? 1 : 0);
