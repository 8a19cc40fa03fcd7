// Validation of everything that names or sizes something from outside the core: account ids,
// idempotency keys, region names, currencies and amounts. Each refusal is InvalidArgument with a
// message; each limit is accepted exactly at the bound and refused one past it.
#include "core/ids.h"

#include <catch2/catch.hpp>
#include <climits>
#include <string>

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
