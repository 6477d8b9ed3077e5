// actions/cache v4.2.3 src/saveImpl.ts (save-only), on @actions/cache from NODE_PATH.
const cache = require("@actions/cache");
const core = require("@actions/core");

const lines = (name, options) => core.getInput(name, options).split("\n")
  .map((s) => s.replace(/^!\s+/, "!").trim()).filter((s) => s !== "");

(async () => {
  let id; // undefined: nothing was attempted (no "save failed" warning, as saveImpl)
  try {
    if (!cache.isFeatureAvailable()) {
      return;
    }
    if (!process.env.GITHUB_REF) {
      core.info("[warning]Event Validation Error: not tied to a branch or tag ref.");
      return;
    }
    const key = core.getInput("key");
    if (!key) {
      core.info("[warning]Key is not specified.");
      return;
    }
    const chunk = parseInt(core.getInput("upload-chunk-size"), 10);
    id = await cache.saveCache(lines("path", { required: true }), key,
      { uploadChunkSize: Number.isNaN(chunk) ? undefined : chunk },
      (core.getInput("enableCrossOsArchive") || "false").toUpperCase() === "TRUE");
    if (id !== -1) {
      core.info(`Cache saved with key: ${key}`);
    }
  } catch (error) {
    core.info(`[warning]${error.message}`);
    id = -1;
  }
  if (id === -1) {
    core.warning("Cache save failed.");
  }
  process.exit(0);
})();
