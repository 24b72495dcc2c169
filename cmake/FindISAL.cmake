# FindISAL.cmake: locates Intel's ISA-L (Debian: libisal-dev).
#
# Defines ISAL_FOUND, ISAL_INCLUDE_DIR, ISAL_LIBRARY, ISAL_VERSION (when
# pkg-config knows it) and the imported target ISAL::isal. The pkg-config
# module "libisal" is used only as a hint, so a hand-built ISA-L without a
# .pc file is still found through CMAKE_PREFIX_PATH or ISAL_ROOT.
#
# This file is installed next to zblConfig.cmake, because the exported
# zbl::zbl_static target needs ISAL::isal in the consuming project too.

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
	pkg_check_modules(PC_ISAL QUIET libisal)
endif()

find_path(ISAL_INCLUDE_DIR
	NAMES isa-l/crc.h
	HINTS ${PC_ISAL_INCLUDEDIR} ${PC_ISAL_INCLUDE_DIRS})
find_library(ISAL_LIBRARY
	NAMES isal
	HINTS ${PC_ISAL_LIBDIR} ${PC_ISAL_LIBRARY_DIRS})
set(ISAL_VERSION "${PC_ISAL_VERSION}")

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(ISAL
	REQUIRED_VARS ISAL_LIBRARY ISAL_INCLUDE_DIR
	VERSION_VAR ISAL_VERSION
	REASON_FAILURE_MESSAGE "install it with: sudo apt-get install -y libisal-dev")

if(ISAL_FOUND AND NOT TARGET ISAL::isal)
	add_library(ISAL::isal UNKNOWN IMPORTED)
	set_target_properties(ISAL::isal PROPERTIES
		IMPORTED_LOCATION "${ISAL_LIBRARY}"
		INTERFACE_INCLUDE_DIRECTORIES "${ISAL_INCLUDE_DIR}")
endif()

mark_as_advanced(ISAL_INCLUDE_DIR ISAL_LIBRARY)
