// actions/cache v4.2.3 src/restoreImpl.ts (restore-only), on @actions/cache from NODE_PATH.
const cache = require("@actions/cache");
const core = require("@actions/core");

const lines = (name, options) => core.getInput(name, options).split("\n")
  .map((s) => s.replace(/^!\s+/, "!").trim()).filter((s) => s !== "");
const flag = (name) => (core.getInput(name) || "false").toUpperCase() === "TRUE";

(async () => {
  try {
    if (!cache.isFeatureAvailable()) {
      core.setOutput("cache-hit", "false");
      return;
    }
    if (!process.env.GITHUB_REF) {
      core.info("[warning]Event Validation Error: not tied to a branch or tag ref.");
      return;
    }
    const key = core.getInput("key", { required: true });
    const restoreKeys = lines("restore-keys");
    const paths = lines("path", { required: true });
    core.setOutput("cache-primary-key", key);
    const matched = await cache.restoreCache(paths, key, restoreKeys,
      { lookupOnly: flag("lookup-only") }, flag("enableCrossOsArchive"));
    if (!matched) {
      if (flag("fail-on-cache-miss")) {
        throw new Error(`Failed to restore cache entry. Input key: ${key}`);
      }
      core.info(`Cache not found for input keys: ${[key, ...restoreKeys].join(", ")}`);
      return;
    }
    core.setOutput("cache-matched-key", matched);
    core.setOutput("cache-hit",
      (matched.localeCompare(key, undefined, { sensitivity: "accent" }) === 0).toString());
    core.info(`Cache restored from key: ${matched}`);
  } catch (error) {
    core.setFailed(error.message);
    process.exit(1);
  }
  process.exit(0);
})();
