/** The call model of docs/CALLS.md. */
export * from "./events.js";
export * from "./address.js";
export * from "./machine.js";
export * from "./tracks.js";
