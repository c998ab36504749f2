# SPDX-License-Identifier: MIT
# Shared daemon code (tools/common), included by tools/c2 and tools/device; built once.
if(NOT TARGET srupd_common)
	pkg_check_modules(MOSQUITTO REQUIRED IMPORTED_TARGET libmosquitto)
	pkg_check_modules(SRUPD_CURL REQUIRED IMPORTED_TARGET libcurl)
	pkg_check_modules(SRUPD_JANSSON REQUIRED IMPORTED_TARGET jansson)
	pkg_check_modules(SRUPD_SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
	find_package(Threads REQUIRED)
	add_library(srupd_common STATIC ${CMAKE_CURRENT_LIST_DIR}/srupd.c
		${CMAKE_CURRENT_LIST_DIR}/show.c ${CMAKE_CURRENT_LIST_DIR}/keyex.c
		${CMAKE_CURRENT_LIST_DIR}/b64.c)
	target_include_directories(srupd_common PUBLIC ${CMAKE_CURRENT_LIST_DIR})
	target_compile_definitions(srupd_common PRIVATE SRUPD_VERSION="${PROJECT_VERSION}")
	target_compile_options(srupd_common PRIVATE ${SRUP_WARNINGS})
	target_link_libraries(srupd_common PUBLIC srup_static PkgConfig::MOSQUITTO Threads::Threads
		OpenSSL::Crypto PkgConfig::SRUPD_CURL PkgConfig::SRUPD_JANSSON PkgConfig::SRUPD_SYSTEMD)
endif()
