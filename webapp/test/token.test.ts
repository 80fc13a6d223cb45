// Access tokens in SETUP (src/session/session.ts): the base64url text that
// `moq-relay token` prints becomes a Token structure (draft-18 §10.2.2) with
// Alias Type USE_VALUE and token type CAT (draft-ietf-moq-c4m §7.1), the
// bytes moq-wire's auth_token::Token::UseValue encodes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { tokenBytes, tokenStructure } from "../src/session/session.js";

describe("access token", () => {
  it("is sent as USE_VALUE, type CAT, with the decoded bytes", () => {
    // 0xd2 0x84 0x43 0xff: base64url "0oRD_w" (no padding, '_' for '/').
    assert.deepEqual([...tokenBytes("0oRD_w")], [0xd2, 0x84, 0x43, 0xff]);
    assert.deepEqual([...tokenBytes(" 0oRD_w== ")], [0xd2, 0x84, 0x43, 0xff]);
    assert.deepEqual([...tokenStructure("0oRD_w")], [0x03, 0x01, 0xd2, 0x84, 0x43, 0xff]);
  });

  it("refuses text that is not base64url", () => {
    assert.throws(() => tokenBytes("not a token!"), /moq-relay token/);
    assert.throws(() => tokenBytes("a+b/c"), /base64url/);
  });
});
