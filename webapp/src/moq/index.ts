/** draft-ietf-moq-transport-18 (and -22, docs/DRAFT22.md) codec of the web phone. */
export * from "./errors.js";
export * from "./varint.js";
export * from "./bytes.js";
export * from "./properties.js";
export * from "./control.js";
export * from "./location_filter.js";
export * from "./draft22_params.js";
export * from "./datagram.js";
export * from "./subgroup.js";
export * from "./fetch.js";
export * from "./stream.js";
