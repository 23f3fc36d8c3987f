<?php
// t/interop/phpmailer.php - the PHPMailer driver of t/19-interop-php.t
// (Debian's php-cli with libphp-phpmailer).
//
// Usage: php phpmailer.php JOB.json. For the job's mode ("mta": plain
// SMTP, PHPMailer's automatic STARTTLS off; "sub": STARTTLS then AUTH;
// "smtps": implicit TLS then AUTH; the server certificate verified
// against the job's CA) it composes each message with PHPMailer - from,
// to, a subject holding the tag, the text body, UTF-8 and 8bit, and the
// attachment when there is one - and sends them all over one kept-alive
// session. The exact message PHPMailer sent (getSentMIMEMessage) is
// written to the message's "file" + ".sent" for the test to compare.
// Prints "TAG ok" or "TAG error: ..." per message.
require '/usr/share/php/libphp-phpmailer/autoload.php';

use PHPMailer\PHPMailer\PHPMailer;
use PHPMailer\PHPMailer\Exception;

$job = json_decode(file_get_contents($argv[1]), true);

function mailer($job)
{
    $m = new PHPMailer(true);
    $m->isSMTP();
    $m->Host = '127.0.0.1';
    $m->Port = $job['port'];
    $m->Helo = $job['helo'];
    $m->Timeout = 20;
    $m->SMTPKeepAlive = true;
    $m->CharSet = PHPMailer::CHARSET_UTF8;
    $m->Encoding = PHPMailer::ENCODING_8BIT;
    $m->SMTPOptions = ['ssl' => ['cafile' => $job['ca'], 'verify_peer' => true,
        'verify_peer_name' => true]];
    if ($job['mode'] == 'mta') {
        $m->SMTPAutoTLS = false;
        return $m;
    }
    $m->SMTPSecure = $job['mode'] == 'smtps' ? PHPMailer::ENCRYPTION_SMTPS
        : PHPMailer::ENCRYPTION_STARTTLS;
    $m->SMTPAuth = true;
    $m->Username = $job['user'];
    $m->Password = $job['password'];
    return $m;
}

$m = mailer($job);
foreach ($job['messages'] as $msg) {
    try {
        $m->clearAllRecipients();
        $m->clearAttachments();
        $m->setFrom($msg['from'], 'Interop Sender');
        $m->addAddress($msg['to'], 'Interop Rcpt');
        $m->Subject = $msg['kind'] . ' ' . $msg['tag'];
        $m->Body = $msg['body'];
        if (isset($msg['attachment']))
            $m->addStringAttachment(file_get_contents($msg['attachment']), 'data.bin');
        $m->send();
        file_put_contents($msg['file'] . '.sent', $m->getSentMIMEMessage());
        echo $msg['tag'], " ok\n";
    } catch (Exception $e) {
        echo $msg['tag'], ' error: ', str_replace("\n", ' ', $e->getMessage()), "\n";
    }
}
$m->smtpClose();
