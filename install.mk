# install.mk: `make install` and `make uninstall`, included by the Makefile
# (uses its PREFIX, SYSCONFDIR, VERSION and B). Every path below can be
# overridden on the command line; DESTDIR is prepended to all of them.
#
#   make install PREFIX=/usr/local DESTDIR=/tmp/stage
#   make uninstall PREFIX=/usr/local DESTDIR=/tmp/stage
#
# Templates (units, acceptd.pc, man pages) get @SBINDIR@, @SYSCONFDIR@, ...
# replaced into $(B)/install/ at every install, so a changed PREFIX is never
# stale. The example config is installed only when none is there, and
# uninstall removes it only when it is still the unchanged example.
# Note: the binary has SYSCONFDIR (its default -c) compiled in: build with
# the same PREFIX/SYSCONFDIR you install with.

DESTDIR    ?=
SBINDIR    ?= $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib
MODULEDIR  ?= $(LIBDIR)/acceptd
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
PCDIR      ?= $(LIBDIR)/pkgconfig
INSTALL    ?= install

INSTALL_GEN   := $(B)/install
INSTALL_UNITS := acceptd.service acceptd.socket
INSTALL_MAN8  := acceptd.8
INSTALL_MAN5  := acceptd.conf.5
INSTALL_CONF  := $(DESTDIR)$(SYSCONFDIR)/acceptd/acceptd.conf

INSTALL_SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@MODULEDIR@|$(MODULEDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	-e 's|@UNITDIR@|$(UNITDIR)|g' -e 's|@VERSION@|$(VERSION)|g'

.PHONY: install uninstall

install: $(B)/acceptd
	@rm -rf $(INSTALL_GEN) && mkdir -p $(INSTALL_GEN)
	@echo "substituting paths into $(INSTALL_GEN): acceptd.pc $(INSTALL_UNITS) $(INSTALL_MAN8) $(INSTALL_MAN5)"
	@$(INSTALL_SUBST) acceptd.pc.in > $(INSTALL_GEN)/acceptd.pc
	@for f in $(INSTALL_UNITS); do $(INSTALL_SUBST) systemd/$$f > $(INSTALL_GEN)/$$f || exit 1; done
	@for f in $(INSTALL_MAN8) $(INSTALL_MAN5); do $(INSTALL_SUBST) man/$$f > $(INSTALL_GEN)/$$f || exit 1; done
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PCDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSCONFDIR)/acceptd
	$(INSTALL) -m 0755 $(B)/acceptd $(DESTDIR)$(SBINDIR)/acceptd
	@for m in $(B)/modules/*.so; do [ -e "$$m" ] || continue; \
		echo "$(INSTALL) -D -m 0755 $$m $(DESTDIR)$(MODULEDIR)/$${m##*/}"; \
		$(INSTALL) -D -m 0755 "$$m" "$(DESTDIR)$(MODULEDIR)/$${m##*/}" || exit 1; done
	@if [ -f include/acceptd/module.h ]; then \
		echo "$(INSTALL) -D -m 0644 include/acceptd/module.h $(DESTDIR)$(INCLUDEDIR)/acceptd/module.h"; \
		$(INSTALL) -D -m 0644 include/acceptd/module.h $(DESTDIR)$(INCLUDEDIR)/acceptd/module.h; fi
	$(INSTALL) -m 0644 $(INSTALL_GEN)/acceptd.pc $(DESTDIR)$(PCDIR)/acceptd.pc
	$(INSTALL) -m 0644 $(INSTALL_GEN)/acceptd.8 $(DESTDIR)$(MANDIR)/man8/acceptd.8
	$(INSTALL) -m 0644 $(INSTALL_GEN)/acceptd.conf.5 $(DESTDIR)$(MANDIR)/man5/acceptd.conf.5
	for f in $(INSTALL_UNITS); do $(INSTALL) -m 0644 $(INSTALL_GEN)/$$f $(DESTDIR)$(UNITDIR)/$$f || exit 1; done
	@if [ -e $(INSTALL_CONF) ]; then \
		echo "install: keeping the existing $(INSTALL_CONF)"; \
	else \
		echo "$(INSTALL) -m 0644 conf/acceptd.conf $(INSTALL_CONF)"; \
		$(INSTALL) -m 0644 conf/acceptd.conf $(INSTALL_CONF); fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/acceptd $(DESTDIR)$(PCDIR)/acceptd.pc \
		$(DESTDIR)$(MANDIR)/man8/acceptd.8 $(DESTDIR)$(MANDIR)/man5/acceptd.conf.5 \
		$(DESTDIR)$(INCLUDEDIR)/acceptd/module.h \
		$(addprefix $(DESTDIR)$(UNITDIR)/,$(INSTALL_UNITS))
	@for m in $(B)/modules/*.so; do [ -e "$$m" ] || continue; \
		echo "rm -f $(DESTDIR)$(MODULEDIR)/$${m##*/}"; rm -f "$(DESTDIR)$(MODULEDIR)/$${m##*/}"; done
	@if [ -f $(INSTALL_CONF) ] && ! cmp -s conf/acceptd.conf $(INSTALL_CONF); then \
		echo "uninstall: keeping $(INSTALL_CONF): it differs from the example"; \
	else echo "rm -f $(INSTALL_CONF)"; rm -f $(INSTALL_CONF); fi
	-rmdir $(DESTDIR)$(MODULEDIR) $(DESTDIR)$(INCLUDEDIR)/acceptd \
		$(DESTDIR)$(SYSCONFDIR)/acceptd 2>/dev/null || true
