/** Where things are. Everything the bench writes goes under the gitignored `.bench/` at the repo root. */

import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = resolve(PACKAGE_DIR, "../..");
export const NATIVE_DIR = join(PACKAGE_DIR, "native");
export const PEERS_DIR = join(PACKAGE_DIR, "src/peers");
export const BUILD_DIR = join(ROOT, ".bench/build");
export const RESULTS_DIR = join(ROOT, ".bench/results");
