# FindLibUring.cmake: locates liburing (Debian: liburing-dev), the io_uring
# helper library the ring's io_uring engine is built on.
#
# Defines LibUring_FOUND, LIBURING_INCLUDE_DIR, LIBURING_LIBRARY,
# LIBURING_VERSION (when pkg-config knows it) and the imported target
# LibUring::uring. Installed next to zblConfig.cmake, because the exported
# zbl::zbl_static target needs LibUring::uring in the consuming project too.

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
	pkg_check_modules(PC_LIBURING QUIET liburing)
endif()

find_path(LIBURING_INCLUDE_DIR
	NAMES liburing.h
	HINTS ${PC_LIBURING_INCLUDEDIR} ${PC_LIBURING_INCLUDE_DIRS})
find_library(LIBURING_LIBRARY
	NAMES uring
	HINTS ${PC_LIBURING_LIBDIR} ${PC_LIBURING_LIBRARY_DIRS})
set(LIBURING_VERSION "${PC_LIBURING_VERSION}")

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(LibUring
	REQUIRED_VARS LIBURING_LIBRARY LIBURING_INCLUDE_DIR
	VERSION_VAR LIBURING_VERSION
	REASON_FAILURE_MESSAGE "install it with: sudo apt-get install -y liburing-dev")

if(LibUring_FOUND AND NOT TARGET LibUring::uring)
	add_library(LibUring::uring UNKNOWN IMPORTED)
	set_target_properties(LibUring::uring PROPERTIES
		IMPORTED_LOCATION "${LIBURING_LIBRARY}"
		INTERFACE_INCLUDE_DIRECTORIES "${LIBURING_INCLUDE_DIR}")
endif()

mark_as_advanced(LIBURING_INCLUDE_DIR LIBURING_LIBRARY)
