#!/usr/bin/perl
# 95-docs.t - the documentation stays in step with the code (STYLE 13, 15).
#
# - every option and section that the libconfuse schema (common/conf.c
#   and its areas common/conf_*.c) defines is documented in man/postern.conf.5 (".It Cm NAME" or
#   ".It Ic NAME") and shown in conf/postern.conf;
# - every option postern.conf.5 documents exists in the schema;
# - every metric family httpd/httpd_metrics.c serves, and every reject
#   reason and delivery status label of common/stats.c, is documented in
#   man/postern-httpd.8;
# - every man page in Makefile.am's dist_man_MANS exists, and every
#   ".Xr postern..." reference names one of them;
# - every man page passes "mandoc -Tlint -Wwarning" (skipped, with a
#   diagnostic, when mandoc is not installed).
# Reads files only: POSTERN_SRCDIR (default: the directory above t/).
use strict;
use warnings;
use Test::More;
use File::Basename qw(dirname);
use File::Spec;

my $src = $ENV{POSTERN_SRCDIR}
    // File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), File::Spec->updir));

# slurp - the whole file as a string, or undef
sub slurp {
	my ($path) = @_;
	open(my $fh, '<', $path) or return undef;
	local $/;
	my $s = <$fh>;
	close($fh);
	return $s;
}

# schema_names - every "name" in CFG_<TYPE>("name", ...) of conf.c, in
# order, without duplicates (comments removed first)
sub schema_names {
	my ($c) = @_;
	$c =~ s{/\*.*?\*/}{ }gs;
	$c =~ s{//[^\n]*}{ }g;
	my (%seen, @names);
	while ($c =~ /\bCFG_(?:STR|INT|BOOL|FLOAT|STR_LIST|INT_LIST|FLOAT_LIST|BOOL_LIST|SEC|FUNC|PTR)(?:_CB|_LIST_CB)?\s*\(\s*"([^"]+)"/g) {
		push(@names, $1) unless $seen{$1}++;
	}
	return @names;
}

# man_options - the option and section names postern.conf.5 documents
sub man_options {
	my ($man) = @_;
	my %o;
	$o{$1} = 1 while $man =~ /^\.It\s+(?:Cm|Ic)\s+([a-z][a-z0-9_]*)\b/mg;
	return %o;
}

# man_pages - the pages Makefile.am installs (dist_man_MANS)
sub man_pages {
	my ($am) = @_;
	return () unless defined($am) && $am =~ /^dist_man_MANS\s*=\s*((?:[^\n]*\\\n)*[^\n]*)/m;
	my $list = $1;
	$list =~ s/\\\n/ /g;
	return split(' ', $list);
}

# the schema is conf.c and its area files conf_*.c
my @conf_files = sort glob("$src/common/conf*.c");
my $confc = @conf_files > 1 ? join("\n", map { slurp($_) // '' } @conf_files) : undef;
my $man5 = slurp("$src/man/postern.conf.5");
my $sample = slurp("$src/conf/postern.conf");
ok(defined($confc), 'common/conf.c and common/conf_*.c are readable') or diag("POSTERN_SRCDIR=$src");
ok(defined($man5), 'man/postern.conf.5 is readable');
ok(defined($sample), 'conf/postern.conf is readable');

# --- the configuration schema against its documentation ----------------
SKIP: {
	skip('conf.c, postern.conf.5 or postern.conf missing', 3)
	    unless defined($confc) && defined($man5) && defined($sample);
	my @names = schema_names($confc);
	ok(@names >= 10, 'found the libconfuse schema in conf.c (' . scalar(@names) . ' names)');
	my %doc = man_options($man5);
	my (@undoc, @unsampled);
	for my $n (@names) {
		push(@undoc, $n) unless $doc{$n};
		# in the sample, set or commented out: "name =", "#name =", "name title {"
		push(@unsampled, $n) unless $sample =~ /^[ \t]*#?[ \t]*\Q$n\E\b/m;
	}
	ok(!@undoc, 'every schema option is documented in postern.conf.5')
	    or diag('undocumented in man/postern.conf.5: ' . join(', ', @undoc));
	ok(!@unsampled, 'every schema option appears in conf/postern.conf')
	    or diag('missing from conf/postern.conf: ' . join(', ', @unsampled));
	my %schema = map { $_ => 1 } @names;
	my @stale = grep { !$schema{$_} } sort keys %doc;
	ok(!@stale, 'postern.conf.5 documents no option the schema lacks')
	    or diag('documented but not in conf.c: ' . join(', ', @stale));
}

# --- the metrics against postern-httpd(8) -------------------------------
{
	my $metrics = slurp("$src/httpd/httpd_metrics.c");
	my $statsc = slurp("$src/common/stats.c");
	my $man8 = slurp("$src/man/postern-httpd.8");
	SKIP: {
		skip('httpd/httpd_metrics.c, common/stats.c or postern-httpd.8 missing', 2)
		    unless defined($metrics) && defined($statsc) && defined($man8);
		my %seen;
		my @fam = grep { !$seen{$_}++ } $metrics =~ /"(postern_[a-z0-9_]+)"/g;
		my @undoc = grep { $man8 !~ /^\.It Sy \Q$_\E\b/m } @fam;
		ok(@fam >= 5 && !@undoc,
		    'every metric family is documented in postern-httpd.8 (' . scalar(@fam) . ')')
		    or diag('undocumented metric families: ' . join(', ', @undoc));
		my @labels = $statsc =~ /\[(?:REJ|DLV)_[A-Z_]+\]\s*=\s*"([a-z_]+)"/g;
		my @missing = grep { $man8 !~ /\bLi \Q$_\E\b/ } @labels;
		ok(@labels >= 3 && !@missing,
		    'every reason and status label is documented in postern-httpd.8 (' .
		    scalar(@labels) . ')')
		    or diag('undocumented labels: ' . join(', ', @missing));
	}
}

# --- the man pages ------------------------------------------------------
my @pages = man_pages(slurp("$src/Makefile.am"));
ok(@pages >= 7, 'Makefile.am lists the man pages (' . scalar(@pages) . ')');
my %page = map { my $b = $_; $b =~ s{.*/}{}; $b =~ s/\.(\d)$/($1)/; $b => 1 } @pages;
for my $p (@pages) {
	my $text = slurp("$src/$p");
	ok(defined($text), "$p exists") or next;
	my @dangling;
	while ($text =~ /^\.Xr\s+(postern\S*)\s+(\d)/mg) {
		push(@dangling, "$1($2)") unless $page{"$1($2)"};
	}
	ok(!@dangling, "$p: every .Xr to a Postern page resolves")
	    or diag('no such page: ' . join(', ', @dangling));
}

SKIP: {
	my $mandoc = (grep { -x "$_/mandoc" } split(/:/, $ENV{PATH} // ''))[0];
	if (!defined($mandoc)) {
		diag('mandoc not found: skipping mandoc -Tlint (apt-get install mandoc)');
		skip('mandoc not installed', scalar(@pages));
	}
	for my $p (@pages) {
		my $path = "$src/$p";
		my $out = `mandoc -Tlint -Wwarning '$path' 2>&1`;
		my $rc = $? >> 8;
		ok($rc == 0 && $out eq '', "mandoc -Tlint -Wwarning $p")
		    or diag($out);
	}
}

done_testing();
