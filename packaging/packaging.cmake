# SPDX-License-Identifier: MIT
# packaging.cmake - install rules for the configuration, systemd units and Debian integration,
# and CPack's DEB packages:
#   libsrup0        the shared library
#   libsrup-dev     headers, static library, srup.pc, find_package(srup)
#   srup-tools      the srup command
#   srup-daemons    srup-c2, srup-device, srup-registry and their systemd units
#   mosquitto-srup  the broker plugin, its policy (/etc/srup), a commented-out
#                   /etc/mosquitto/conf.d/srup.conf, tmpfiles.d (/var/lib/srup for mosquitto),
#                   logrotate for the audit log, an example prometheus-mqtt-exporter config
#                   (/usr/share/doc/mosquitto-srup/examples/srup-mqtt-exporter.yaml)
# Build: cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr && cmake --build build &&
#        (cd build && cpack -G DEB)
set(SRUP_PKG ${CMAKE_CURRENT_LIST_DIR})
execute_process(COMMAND dpkg-architecture -qDEB_HOST_MULTIARCH OUTPUT_VARIABLE SRUP_MULTIARCH
	OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT SRUP_MULTIARCH)
	set(SRUP_MULTIARCH ${CMAKE_LIBRARY_ARCHITECTURE})
endif()
set(MULTIARCH ${SRUP_MULTIARCH})
configure_file(${SRUP_PKG}/etc/srup.conf ${CMAKE_BINARY_DIR}/packaging/srup.conf @ONLY)

# Under /usr, GNUInstallDirs puts these in /etc; under another prefix, in <prefix>/etc.
install(FILES ${CMAKE_SOURCE_DIR}/policy/srup.policy
	DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/srup COMPONENT plugin)
install(FILES ${CMAKE_BINARY_DIR}/packaging/srup.conf
	DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/mosquitto/conf.d COMPONENT plugin)
install(FILES ${SRUP_PKG}/etc/tmpfiles-srup.conf DESTINATION lib/tmpfiles.d RENAME srup.conf
	COMPONENT plugin)
install(FILES ${SRUP_PKG}/etc/logrotate-srup DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/logrotate.d
	RENAME srup COMPONENT plugin)
# An example, not a conffile: the exporter's config names the site's broker and certificates.
install(FILES ${SRUP_PKG}/prometheus/srup-mqtt-exporter.yaml
	DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/mosquitto-srup/examples COMPONENT plugin)
file(GLOB SRUP_UNITS ${SRUP_PKG}/systemd/*.service)
install(FILES ${SRUP_UNITS} DESTINATION lib/systemd/system COMPONENT daemons)
install(FILES ${SRUP_PKG}/sysusers/srup.conf DESTINATION lib/sysusers.d COMPONENT daemons)

set(CPACK_PACKAGE_NAME srup-broker)
set(CPACK_PACKAGE_VENDOR "srup-broker")
set(CPACK_PACKAGE_CONTACT "srup-broker developers <srup-broker@users.noreply.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Secure Remote Update Protocol (SRUP) enforced at a Mosquitto broker")
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_SOURCE_DIR}/LICENSE)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL lib dev tools daemons plugin)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_LIB_PACKAGE_NAME libsrup0)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libsrup-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libsrup0 (= ${PROJECT_VERSION}), libssl-dev, uuid-dev, zlib1g-dev")
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME srup-tools)
set(CPACK_DEBIAN_DAEMONS_PACKAGE_NAME srup-daemons)
set(CPACK_DEBIAN_DAEMONS_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_DAEMONS_PACKAGE_CONTROL_EXTRA ${SRUP_PKG}/debian/daemons/postinst)
set(CPACK_DEBIAN_PLUGIN_PACKAGE_NAME mosquitto-srup)
set(CPACK_DEBIAN_PLUGIN_PACKAGE_DEPENDS "mosquitto (>= 2.0)")
set(CPACK_DEBIAN_PLUGIN_PACKAGE_RECOMMENDS "srup-tools")
set(CPACK_DEBIAN_PLUGIN_PACKAGE_SUGGESTS "prometheus-mqtt-exporter")
set(CPACK_DEBIAN_PLUGIN_PACKAGE_CONTROL_EXTRA
	"${SRUP_PKG}/debian/plugin/postinst;${SRUP_PKG}/debian/plugin/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
cpack_add_component(lib DISPLAY_NAME "libsrup runtime")
cpack_add_component(dev DISPLAY_NAME "libsrup development files" DEPENDS lib)
cpack_add_component(tools DISPLAY_NAME "srup tool")
cpack_add_component(daemons DISPLAY_NAME "SRUP daemons")
cpack_add_component(plugin DISPLAY_NAME "Mosquitto SRUP plugin")
