// Addresses and namespaces (docs/CALLS.md §1-§2); mirrors pub-sub-audio's call/address.rs tests.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AddressError, formatAddress, isSid, Namespaces, namespacePath, newSid, parseAddress, parseSuffix } from "../src/call/address.js";
import { losesGlare } from "../src/call/machine.js";

describe("addresses and namespaces (CALLS.md §1-§2)", () => {
  it("parses user and user/ext addresses", () => {
    assert.deepEqual(parseAddress("alice"), { user: "alice", ext: undefined });
    assert.equal(formatAddress(parseAddress("pbx/100")), "pbx/100");
    for (const bad of ["", "Alice", "a/b/c", "a b", "pbx/", "x".repeat(65), "ä"]) {
      assert.throws(() => parseAddress(bad), AddressError, JSON.stringify(bad));
    }
    assert.equal(parseAddress("x".repeat(64)).user.length, 64);
  });

  it("builds the namespaces", () => {
    assert.deepEqual(Namespaces.caller("bob", "ab12", "alice"), ["moq-phone", "v1", "ring", "bob", "ab12", "alice"]);
    assert.deepEqual(Namespaces.callee("ab12", "bob", "d1"), ["moq-phone", "v1", "call", "ab12", "bob", "d1"]);
    assert.deepEqual(Namespaces.presence(), ["moq-phone", "v1", "users"]);
    assert.deepEqual(Namespaces.device("alice", "d1"), ["moq-phone", "v1", "users", "alice", "d1"]);
    assert.deepEqual(Namespaces.ringPrefix("bob"), ["moq-phone", "v1", "ring", "bob"]);
    assert.deepEqual(Namespaces.callPrefix("ab12"), ["moq-phone", "v1", "call", "ab12"]);
    assert.equal(namespacePath(Namespaces.callee("ab12", "bob", "d1")), "moq-phone/v1/call/ab12/bob/d1");
  });

  it("reads NAMESPACE suffixes", () => {
    assert.deepEqual(parseSuffix(["6f1c2a9d4b7e8f001122334455667788", "alice"]), ["6f1c2a9d4b7e8f001122334455667788", "alice"]);
    assert.equal(parseSuffix(["alice"]), undefined);
    assert.equal(parseSuffix(["alice", "D1"]), undefined);
  });

  it("makes 128-bit hex session ids", () => {
    const a = newSid();
    assert.ok(isSid(a), a);
    assert.notEqual(newSid(), a);
    assert.ok(!isSid("6F1C2A9D4B7E8F001122334455667788"));
  });

  it("glare: the bytewise larger sid yields", () => {
    assert.equal(losesGlare("b0", "a9"), true);
    assert.equal(losesGlare("a9", "b0"), false);
    assert.equal(losesGlare("ab", "ab"), false);
    assert.equal(losesGlare("abc", "ab"), true);
    // Code-point (UTF-8 byte) order, not UTF-16 order.
    assert.equal(losesGlare("\u{1F600}", "\uFFFD"), true);
  });
});
