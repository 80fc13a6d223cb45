/**
 * The web phone's protocol library: the draft-18 MoQ codec (`moq/`), the
 * call model and state machine (`call/`) and LOC audio packaging
 * (`media/loc`). The page itself starts at `main.ts`.
 */
export * from "./moq/index.js";
export * from "./call/index.js";
export * from "./media/loc.js";
