# tallyd's unit tests of pure pieces (config parsing, auth, the API's request validation, the
# LevelDB store), label `node`. Included from tests/node/CMakeLists.txt.
tally_add_catch_test(tallyd_unit_test node
  tallyd_config_test.cc
  tallyd_auth_test.cc
  tallyd_api_test.cc
  tallyd_store_test.cc
)
target_link_libraries(tallyd_unit_test PRIVATE tally_node)
target_compile_definitions(tallyd_unit_test PRIVATE TALLY_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
