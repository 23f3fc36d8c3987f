<?php
// t/interop/php_mail.php - the mail() driver of t/19-interop-php.t: PHP's
// own mail() with sendmail_path set (by the test, with php -d) to
// "postern-sendmail -C CONF -t -i", as a PHP application on a host with
// Postern installed sends mail.
//
// Usage: php -d sendmail_path=... php_mail.php JOB.json. Each message:
// mail(to, subject, body, the From:/MIME headers, "-f from"); no Date: or
// Message-ID: (mail() adds neither: the sendmail side must). Prints "TAG
// ok" or "TAG error: ..." per message.
$job = json_decode(file_get_contents($argv[1]), true);
foreach ($job['messages'] as $msg) {
    $headers = ['From' => 'Interop Sender <' . $msg['from'] . '>',
        'MIME-Version' => '1.0',
        'Content-Type' => 'text/plain; charset=utf-8',
        'Content-Transfer-Encoding' => '8bit'];
    $ok = mail($msg['to'], $msg['kind'] . ' ' . $msg['tag'], $msg['body'], $headers,
        '-f' . $msg['from']);
    echo $msg['tag'], $ok ? " ok\n" : " error: mail() returned false\n";
}
