// Validation of everything that names or sizes something from outside the core: account ids,
// idempotency keys, region names, currencies, amounts, and an op's memo and metadata. Each refusal
// is InvalidArgument with a message; each limit is accepted exactly at the bound and refused one
// past it.
#include "core/ids.h"

#include <catch2/catch.hpp>
#include <climits>
#include <string>

#include "core/validate.h"

using namespace tally;

namespace {

void RequireInvalid(const Status& s) {
  INFO(s.ToString());
  REQUIRE(s.code() == Code::kInvalidArgument);
  REQUIRE_FALSE(s.message().empty());
}

}  // namespace

TEST_CASE("account ids: 1..64 bytes of [A-Za-z0-9._:-]", "[ids]") {
  CHECK(ValidateAccountId("a").ok());
  CHECK(ValidateAccountId("alice").ok());
  CHECK(ValidateAccountId("Alice.Smith_01:eur-main").ok());
  CHECK(ValidateAccountId(std::string(kMaxAccountIdBytes, 'x')).ok());
  CHECK(kMaxAccountIdBytes == 64);

  RequireInvalid(ValidateAccountId(""));
  RequireInvalid(ValidateAccountId(std::string(kMaxAccountIdBytes + 1, 'x')));
  for (std::string bad : {"a b", "a/b", "a\\b", "a\"b", "a\nb", "é", "a@b", "a#b", "a+b", "a,b",
                          "a;b", "a*b", "a%b", "(a)", "a\tb"}) {
    INFO("id '" << bad << "'");
    RequireInvalid(ValidateAccountId(bad));
  }
  RequireInvalid(ValidateAccountId(std::string("a\0b", 3)));
  RequireInvalid(ValidateAccountId(std::string("\x7f")));
  RequireInvalid(ValidateAccountId(std::string("\xff")));
}

TEST_CASE("idempotency keys: 1..255 bytes of printable ASCII without spaces", "[ids]") {
  CHECK(ValidateIdempotencyKey("k").ok());
  CHECK(ValidateIdempotencyKey("order-42/retry#1?x=y&z={}[]|~!").ok());
  CHECK(ValidateIdempotencyKey(std::string(kMaxIdempotencyKeyBytes, '~')).ok());
  CHECK(kMaxIdempotencyKeyBytes == 255);
  // Every printable character 0x21..0x7e on its own is a valid key.
  for (int c = 0x21; c <= 0x7e; ++c) {
    INFO("char " << c);
    CHECK(ValidateIdempotencyKey(std::string(1, static_cast<char>(c))).ok());
  }

  RequireInvalid(ValidateIdempotencyKey(""));
  RequireInvalid(ValidateIdempotencyKey(std::string(kMaxIdempotencyKeyBytes + 1, 'k')));
  RequireInvalid(ValidateIdempotencyKey(std::string(1000, 'k')));
  RequireInvalid(ValidateIdempotencyKey("a b"));
  RequireInvalid(ValidateIdempotencyKey(" "));
  RequireInvalid(ValidateIdempotencyKey("a\tb"));
  RequireInvalid(ValidateIdempotencyKey("a\nb"));
  RequireInvalid(ValidateIdempotencyKey(std::string("a\0b", 3)));
  RequireInvalid(ValidateIdempotencyKey(std::string("\x7f")));
  RequireInvalid(ValidateIdempotencyKey(std::string("caf\xc3\xa9")));  // UTF-8 is not ASCII
}

TEST_CASE("region names: 1..32 bytes of [a-z0-9-] starting with a letter", "[ids]") {
  CHECK(ValidateRegionName("a").ok());
  CHECK(ValidateRegionName("eu-west-1").ok());
  CHECK(ValidateRegionName("r0").ok());
  CHECK(ValidateRegionName("a" + std::string(kMaxRegionNameBytes - 1, '9')).ok());
  CHECK(kMaxRegionNameBytes == 32);

  RequireInvalid(ValidateRegionName(""));
  RequireInvalid(ValidateRegionName(std::string(kMaxRegionNameBytes + 1, 'a')));
  RequireInvalid(ValidateRegionName("0eu"));
  RequireInvalid(ValidateRegionName("-eu"));
  RequireInvalid(ValidateRegionName("EU"));
  RequireInvalid(ValidateRegionName("eU"));
  RequireInvalid(ValidateRegionName("eu_west"));
  RequireInvalid(ValidateRegionName("eu west"));
  RequireInvalid(ValidateRegionName("eu.west"));
  RequireInvalid(ValidateRegionName(std::string("eu\0", 3)));
}

TEST_CASE("currencies: exactly three upper-case letters", "[ids]") {
  CHECK(ValidateCurrency("EUR").ok());
  CHECK(ValidateCurrency("AAA").ok());
  CHECK(ValidateCurrency("ZZZ").ok());
  RequireInvalid(ValidateCurrency(""));
  RequireInvalid(ValidateCurrency("EU"));
  RequireInvalid(ValidateCurrency("EURO"));
  RequireInvalid(ValidateCurrency("eur"));
  RequireInvalid(ValidateCurrency("Eur"));
  RequireInvalid(ValidateCurrency("E1R"));
  RequireInvalid(ValidateCurrency("E R"));
  RequireInvalid(ValidateCurrency("@UR"));  // just below 'A'
  RequireInvalid(ValidateCurrency("[UR"));  // just above 'Z'
}

TEST_CASE("amounts: 1..kMaxOpAmount, and the field is named", "[ids]") {
  CHECK(ValidateAmount(1).ok());
  CHECK(ValidateAmount(12345).ok());
  CHECK(ValidateAmount(kMaxOpAmount).ok());
  CHECK(kMaxOpAmount == (Amount{1} << 50));

  RequireInvalid(ValidateAmount(0));
  RequireInvalid(ValidateAmount(-1));
  RequireInvalid(ValidateAmount(kMaxOpAmount + 1));
  RequireInvalid(ValidateAmount(INT64_MAX));
  RequireInvalid(ValidateAmount(INT64_MIN));
  RequireInvalid(ValidateAmount(INT64_MIN + 1));

  const Status named = ValidateAmount(0, "fee.flat");
  RequireInvalid(named);
  CHECK(named.message().find("fee.flat") != std::string::npos);
}

TEST_CASE("status codes have stable snake_case names", "[ids]") {
  CHECK(Status::OK().ToString() == "ok");
  CHECK(Status::InvalidArgument("x").code_name() == "invalid_argument");
  CHECK(Status::InsufficientFunds("need 5").ToString() == "insufficient_funds: need 5");
  CHECK(Status::IdempotencyKeyReused("").code_name() == "idempotency_key_reused");
  CHECK(Status::ResourceExhausted("").code_name() == "resource_exhausted");
  CHECK(Status::Conflict("").code_name() == "conflict");
  CHECK(Status::NotFound("").code_name() == "not_found");
  CHECK(Status::AlreadyExists("").code_name() == "already_exists");
  CHECK(Status::FailedPrecondition("").code_name() == "failed_precondition");
}

TEST_CASE("memos: at most 140 bytes of UTF-8 text without control characters", "[ids][note]") {
  CHECK(kMaxMemoBytes == 140);
  CHECK(ValidateMemo("").ok());  // none
  CHECK(ValidateMemo("rent for May, flat 3 <b>&amp;</b> \"quoted\"").ok());
  CHECK(ValidateMemo(std::string(kMaxMemoBytes, 'm')).ok());
  // Multi-byte characters count in bytes: 46 x "€" (3 bytes) is 138, one "é" more is 140.
  std::string euros;
  for (int i = 0; i < 46; ++i) euros += "\u20ac";
  CHECK(ValidateMemo(euros + "\u00e9").ok());
  // U+1F600, U+00A0, U+FFFF, U+10FFFF: four-byte, two-byte and three-byte forms at their edges.
  CHECK(ValidateMemo("\xf0\x9f\x98\x80 \xc2\xa0 \xef\xbf\xbf \xf4\x8f\xbf\xbf").ok());

  const Status long_memo = ValidateMemo(std::string(kMaxMemoBytes + 1, 'm'));
  RequireInvalid(long_memo);
  CHECK(long_memo.message() == "memo is 141 bytes; at most 140");
  RequireInvalid(ValidateMemo(euros + "\u00e9" + "x"));
  for (std::string bad : {std::string("a\nb"), std::string("a\tb"), std::string("\r"),
                          std::string("a\0b", 3), std::string("\x7f"),
                          std::string("\xc2\x85"),          // C1 control U+0085
                          std::string("\xc0\xaf"),          // overlong '/'
                          std::string("\xe0\x80\xaf"),      // overlong '/'
                          std::string("\xed\xa0\x80"),      // surrogate U+D800
                          std::string("\xf4\x90\x80\x80"),  // above U+10FFFF
                          std::string("\xf5\x80\x80\x80"), std::string("\xff"),
                          std::string("\x80"),      // a continuation byte alone
                          std::string("\xe2\x82"),  // cut short
                          std::string("a\xe2\x82\x28")}) {
    INFO("memo '" << bad << "'");
    const Status s = ValidateMemo(bad);
    RequireInvalid(s);
    CHECK(s.message().starts_with("memo "));
  }
}

TEST_CASE("metadata: at most 16 pairs of text, distinct keys, 1 KiB in all", "[ids][note]") {
  CHECK(kMaxMetadataPairs == 16);
  CHECK(kMaxMetadataBytes == 1024);
  CHECK(ValidateMetadata({}).ok());
  CHECK(ValidateMetadata({{"order", "o-1"}, {"customer", ""}, {"\u00e9t\u00e9", "\u20ac"}}).ok());
  Metadata full;
  for (int i = 0; i < 16; ++i)
    full.emplace_back("k" + std::to_string(i + 10), std::string(61, 'v'));
  CHECK(ValidateMetadata(full).ok());  // 16 x (3 + 61) = 1024 bytes

  Metadata too_big = full;
  too_big.back().second += 'v';
  Status s = ValidateMetadata(too_big);
  RequireInvalid(s);
  CHECK(s.message() == "metadata is 1025 bytes (keys and values); at most 1024");

  Metadata too_many = {{"a", ""}};
  for (int i = 0; i < 16; ++i) too_many.emplace_back("k" + std::to_string(i), "");
  s = ValidateMetadata(too_many);
  RequireInvalid(s);
  CHECK(s.message() == "metadata has 17 pairs; at most 16");

  s = ValidateMetadata({{"a", "1"}, {"b", "2"}, {"a", "3"}});
  RequireInvalid(s);
  CHECK(s.message() == "metadata key 'a' appears twice");
  s = ValidateMetadata({{"", "1"}});
  RequireInvalid(s);
  CHECK(s.message() == "metadata has an empty key");
  RequireInvalid(ValidateMetadata({{"a\nb", "1"}}));
  RequireInvalid(ValidateMetadata({{"a", "1\n"}}));
  RequireInvalid(ValidateMetadata({{"a", std::string("\xff")}}));
  s = ValidateMetadata({{"ok", "x"}, {"k", std::string("\xc0\xaf")}});
  RequireInvalid(s);
  CHECK(s.message() == "metadata value of 'k' is not valid UTF-8 at byte 0");
}
