#!/usr/bin/perl
# 95-docs.t - the documentation stays in step with the code (STYLE 13, 15).
#
# - every option and section that the libconfuse schema (common/conf.c
#   and its areas common/conf_*.c) defines is documented in man/postern.conf.5 (".It Cm NAME" or
#   ".It Ic NAME") and shown in conf/postern.conf;
# - every option postern.conf.5 documents exists in the schema;
# - every password hash prefix the schema accepts is documented there;
# - every command-line option of every program (getopt strings, long
#   options, hand-parsed "-x" words) is in that program's man page;
# - the queue id layout postern-queued(8) describes is the one
#   common/spool.c writes;
# - a man page naming the default configuration file names the default
#   build's path, and /etc only with the --sysconfdir it takes;
# - the README names every transport type and every HTTP route;
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

# --- password hashes ------------------------------------------------------
SKIP: {
	skip('the schema or postern.conf.5 missing', 1) unless defined($confc) && defined($man5);
	my ($list) = $confc =~ /\bprefixes\[\]\s*=\s*\{([^}]*)\}/;
	my @pfx = ($list // '') =~ /"(\$[^"]+\$)"/g;
	my @undoc = grep { $man5 !~ /\bQl \Q$_\E/ } @pfx;
	ok(@pfx >= 3 && !@undoc, 'every accepted hash prefix is documented in postern.conf.5 ('
	    . join(' ', @pfx) . ')') or diag('undocumented: ' . join(' ', @undoc));
	my ($kinds) = $confc =~ /#define HASH_KINDS "([^"]*)"/;
	my @unnamed = grep { ($kinds // '') !~ /\Q$_\E/ } @pfx;
	ok(!@unnamed, 'the config error for a bad hash names every accepted prefix')
	    or diag('not in HASH_KINDS: ' . join(' ', @unnamed));
}

# --- command-line options against the man pages ------------------------------
# options_of - the options the sources parse: getopt letters, long
# options, "-x" words compared with strcmp, sendmail's value letters
sub options_of {
	my (@files) = @_;
	my %o;
	for my $f (@files) {
		my $c = slurp("$src/$f") // next;
		for my $spec ($c =~ /\bgetopt(?:_long)?\s*\([^;]*?"([^"]*)"/g) {
			$o{"-$_"} = 1 for grep { /[A-Za-z]/ } split(//, $spec =~ s/[:+]//gr);
		}
		$o{"--$1"} = 1 while $c =~ /\{\s*"([a-z][a-z0-9-]*)",\s*(?:no|required|optional)_argument/g;
		$o{$1} = 1 while $c =~ /\bstrcmp\s*\(\s*(?:argv\[\w+\]|arg)\s*,\s*"(-{1,2}[A-Za-z][\w-]*)"/g;
		$o{"-$1"} = 1 while $c =~ /\{\s*'([A-Za-z])',\s*\d+\s*\}/g;
	}
	return sort keys %o;
}
my @progs = (
	[ 'man/postern.8', 'master/master.c' ],
	[ 'man/posternctl.8', glob_rel('ctl/*.c') ],
	[ 'man/postern-sendmail.8', 'sendmail/sendmail.c' ],
	(map { [ "man/postern-$_.8", 'common/proc.c' ] } qw(smtpd queued delivery httpd)),
);
# glob_rel - source files matching a pattern, relative to $src
sub glob_rel { return map { s{^\Q$src\E/}{}r } sort glob("$src/$_[0]") }
for my $p (@progs) {
	my ($page, @files) = @$p;
	my $man = slurp("$src/$page");
	my @opts = options_of(@files);
	my @missing = grep { my $o = $_ =~ s/^-//r; !defined($man) || $man !~ /\bFl \Q$o\E(?![\w-])/ } @opts;
	ok(@opts >= 1 && !@missing, "$page documents the options of @files (@opts)")
	    or diag('undocumented: ' . join(' ', @missing));
}

# --- facts the man pages restate --------------------------------------------
{
	my $spool = slurp("$src/common/spool.c") // '';
	my $qman = slurp("$src/man/postern-queued.8") // '';
	my ($ms, $rnd) = $spool =~ /"%0(\d+)llX%0(\d+)X"/;
	ok(defined($rnd), 'common/spool.c: the queue id format found');
	like($qman =~ s/\n/ /gr, qr/queue id is \d+ upper-case hexadecimal digits: \Q${\($ms \/\/ '?')}\E for the milliseconds.*? and \Q${\($rnd \/\/ '?')}\E\s+random/,
	    "postern-queued.8 describes the queue id as spool.c writes it ($ms + $rnd)");
}
{
	my $ac = slurp("$src/configure.ac") // '';
	my ($prefix) = $ac =~ /AC_PREFIX_DEFAULT\(\[?([^\])]+)/;
	my $sysconf = ($prefix // '/usr/local') . '/etc';
	for my $page (glob_rel('man/*.[58]')) {
		my @l = split /\n/, slurp("$src/$page") // '';
		my @bad;
		for my $i (0 .. $#l) {
			next unless $l[$i] =~ m{^\.(?:It )?Pa (\S*)/postern/postern\.conf};
			my $dir = $1;
			next if $dir eq $sysconf;
			push(@bad, "line " . ($i + 1) . ": $dir")
			    unless $dir eq '/etc' && join(' ', @l[$i .. ($i + 4 > $#l ? $#l : $i + 4)]) =~ /sysconfdir/;
		}
		ok(!@bad, "$page: the default configuration path is the build's ($sysconf/postern/postern.conf)")
		    or diag(join('; ', @bad));
	}
}
{
	my $readme = slurp("$src/README") // '';
	my ($types) = ($confc // '') =~ /transport_types\[\]\s*=\s*\{(.*?)\};/s;
	my @t = ($types // '') =~ /\{\s*"([a-z]+)"/g;
	my @missing = grep { $readme !~ /\b\Q$_\E\b/ } @t;
	ok(@t >= 3 && !@missing, "the README names every transport type (@t)")
	    or diag('not in the README: ' . join(' ', @missing));
	my $httpd = slurp("$src/httpd/httpd.c") // '';
	my ($tab) = $httpd =~ /\broutes\[\]\s*=\s*\{(.*?)\n\};/s;
	my %seen;
	my @paths = grep { !$seen{$_}++ }
	    map { /"(\/[^"]*)"/ ? $1 : () } grep { !/RF_COMPAT/ } split /\},/, $tab // '';
	@missing = grep { $readme !~ /\Q$_\E/ } @paths;
	ok(@paths >= 3 && !@missing, "the README names every HTTP route (@paths)")
	    or diag('not in the README: ' . join(' ', @missing));
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
