# gRPC and protobuf for Strata's service APIs (proto/).
#
# STRATA_WITH_GRPC (ON by default) builds the generated protobuf/gRPC
# libraries; scripts/install_deps.sh installs what it needs (Debian 12:
# libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler).
# With it OFF the rest of the tree configures and builds without them.
#
# Finding the packages: CMake's FindProtobuf module for protobuf (Debian ships
# no protobuf-config.cmake) and gRPC's own gRPCConfig.cmake, which Debian 12
# ships and which works; pkg-config `grpc++` is the fallback where it does not.
#
# Included from proto/CMakeLists.txt; targets are made global so tests/ and
# the services can link them. Results:
#   STRATA_HAVE_GRPC            ON when everything was found (cache, internal)
#   STRATA_PROTOC               the protoc used (cache, internal)
#   strata_grpc                 INTERFACE target: grpc++ and protobuf
#   strata_grpc_reflection      INTERFACE target: grpc++ server reflection
#   strata_proto_library(<name> PROTOS <files relative to proto/>... [GRPC] [DEPS <libs>...])
#                               static library of the generated code; headers
#                               are included as "<proto path>.pb.h", e.g.
#                               #include "strata/v1/worker.pb.h"

option(STRATA_WITH_GRPC "Build the gRPC/protobuf service APIs (proto/)" ON)
set(STRATA_HAVE_GRPC OFF CACHE INTERNAL "")

if(STRATA_WITH_GRPC)
  set(CMAKE_FIND_PACKAGE_TARGETS_GLOBAL ON)
  find_package(Protobuf)
  # gRPCConfig.cmake looks for c-ares by config first and reports a harmless
  # "Could NOT find c-ares" before its module fallback finds it.
  find_package(gRPC CONFIG QUIET)
  if(gRPC_FOUND AND TARGET gRPC::grpc++ AND TARGET gRPC::grpc_cpp_plugin)
    get_target_property(STRATA_GRPC_CPP_PLUGIN gRPC::grpc_cpp_plugin IMPORTED_LOCATION_NONE)
    if(NOT STRATA_GRPC_CPP_PLUGIN)
      set(STRATA_GRPC_CPP_PLUGIN $<TARGET_FILE:gRPC::grpc_cpp_plugin>)
    endif()
    set(_strata_grpcpp gRPC::grpc++)
    set(_strata_grpc_reflection gRPC::grpc++_reflection)
  else()
    pkg_check_modules(GRPCPP IMPORTED_TARGET GLOBAL grpc++)
    find_program(STRATA_GRPC_CPP_PLUGIN grpc_cpp_plugin)
    find_library(STRATA_GRPC_REFLECTION_LIB grpc++_reflection)
    if(GRPCPP_FOUND)
      set(_strata_grpcpp PkgConfig::GRPCPP)
      set(_strata_grpc_reflection ${STRATA_GRPC_REFLECTION_LIB})
    endif()
  endif()

  if(NOT Protobuf_FOUND OR NOT Protobuf_PROTOC_EXECUTABLE OR NOT _strata_grpcpp
     OR NOT STRATA_GRPC_CPP_PLUGIN OR NOT _strata_grpc_reflection)
    message(FATAL_ERROR
      "STRATA_WITH_GRPC is ON but gRPC/protobuf were not found (protobuf: ${Protobuf_FOUND}, "
      "protoc: ${Protobuf_PROTOC_EXECUTABLE}, grpc++: ${_strata_grpcpp}, "
      "grpc_cpp_plugin: ${STRATA_GRPC_CPP_PLUGIN}, reflection: ${_strata_grpc_reflection}). "
      "Run scripts/install_deps.sh, or configure with -DSTRATA_WITH_GRPC=OFF.")
  endif()

  set(STRATA_HAVE_GRPC ON CACHE INTERNAL "")
  set(STRATA_PROTOC ${Protobuf_PROTOC_EXECUTABLE} CACHE INTERNAL "")
  message(STATUS "gRPC/protobuf: protobuf ${Protobuf_VERSION}, protoc ${STRATA_PROTOC}, "
                 "plugin ${STRATA_GRPC_CPP_PLUGIN}")

  add_library(strata_grpc INTERFACE)
  target_link_libraries(strata_grpc INTERFACE ${_strata_grpcpp} protobuf::libprotobuf)
  add_library(strata_grpc_reflection INTERFACE)
  target_link_libraries(strata_grpc_reflection INTERFACE ${_strata_grpc_reflection} strata_grpc)
endif()

set(STRATA_PROTO_ROOT ${CMAKE_SOURCE_DIR}/proto)
set(STRATA_PROTO_GEN_DIR ${CMAKE_BINARY_DIR}/proto_gen)

# strata_proto_library(<name> PROTOS <files relative to proto/>... [GRPC] [DEPS <libs>...])
# Runs protoc (and grpc_cpp_plugin with GRPC) into the build tree and compiles
# the result into a static library. DEPS are the libraries of imported .protos.
function(strata_proto_library name)
  cmake_parse_arguments(ARG "GRPC" "" "PROTOS;DEPS" ${ARGN})
  set(srcs)
  foreach(proto ${ARG_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" stem ${proto})
    set(outs ${STRATA_PROTO_GEN_DIR}/${stem}.pb.cc ${STRATA_PROTO_GEN_DIR}/${stem}.pb.h)
    set(grpc_args)
    if(ARG_GRPC)
      list(APPEND outs ${STRATA_PROTO_GEN_DIR}/${stem}.grpc.pb.cc
                       ${STRATA_PROTO_GEN_DIR}/${stem}.grpc.pb.h)
      set(grpc_args --grpc_out=${STRATA_PROTO_GEN_DIR}
                    --plugin=protoc-gen-grpc=${STRATA_GRPC_CPP_PLUGIN})
    endif()
    add_custom_command(
      OUTPUT ${outs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${STRATA_PROTO_GEN_DIR}
      COMMAND ${STRATA_PROTOC} --proto_path=${STRATA_PROTO_ROOT}
              --cpp_out=${STRATA_PROTO_GEN_DIR} ${grpc_args} ${STRATA_PROTO_ROOT}/${proto}
      DEPENDS ${STRATA_PROTO_ROOT}/${proto} ${STRATA_PROTOC}
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND srcs ${outs})
  endforeach()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${STRATA_PROTO_GEN_DIR})
  target_link_libraries(${name} PUBLIC strata_grpc ${ARG_DEPS})
  # Generated code is not ours to fix; keep its warnings out of the build log.
  target_compile_options(${name} PRIVATE -w)
endfunction()
