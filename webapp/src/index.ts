/**
 * moq-phone web phone foundation: the draft-18 MoQ codec (`moq/`), the call
 * model and state machine (`call/`) and LOC audio packaging (`media/`).
 * Bundled by `npm run build` to dist/moq-phone.js for the UI to import.
 */
export * from "./moq/index.js";
export * from "./call/index.js";
export * from "./media/loc.js";
